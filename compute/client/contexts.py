"""Which control plane the CLI talks to: the data directory here, or a server, named on the
command line or by a context in the client's configuration file, the way kubectl does.

    # ~/.config/computectl/config.toml (or $COMPUTECTL_CLIENT_CONFIG); mode 0600 if it
    # holds a token itself
    current_context = "prod"

    [contexts.prod]
    server = "https://computectl.example.com"
    token_file = "/home/alice/.config/computectl/prod.token"   # or: token = "cct_..."

The context named "local" is the data directory (there is nothing to configure for it).
Standard library only: this runs before every remote command.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compute.errors import ConfigError, InvalidInput

LOCAL = "local"
MAX_CONFIG_BYTES = 64 * 1024
MAX_TOKEN_BYTES = 4096
CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# Printable ASCII without spaces: a token goes into an HTTP header as it is.
TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
CONTEXT_KEYS = frozenset({"server", "token", "token_file"})


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    token: str | None = None
    token_file: str | None = None


@dataclass(frozen=True)
class ClientConfig:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A server to talk to: its base URL, the token to present, and what named it."""

    server: str
    token: str | None
    context: str | None
    # Named on the command line or in the environment (not only by current_context).
    explicit: bool


def config_path(env: Mapping[str, str]) -> Path:
    given = env.get("COMPUTECTL_CLIENT_CONFIG")
    if given:
        return Path(given).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "computectl" / "config.toml"


def check_server(url: str) -> str:
    """An http(s) URL of a control plane, without a trailing slash; InvalidInput if not."""
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or len(url) > 2048:
        raise InvalidInput("server: give an http:// or https:// URL")
    try:
        parts = urlsplit(url.strip())
        port_ok = parts.port is None or parts.port > 0  # .port raises on one out of range
    except ValueError as exc:
        raise InvalidInput(f"server {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidInput(f"server {url!r}: give an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"server {parts.hostname}: no credentials in the URL; give a token")
    if parts.query or parts.fragment:
        raise InvalidInput(f"server {url!r}: a URL without a query or fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def check_token(token: str, source: str) -> str:
    token = token.strip()
    if TOKEN.fullmatch(token) is None:
        raise ConfigError(f"{source}: not a token (printable characters, no spaces)")
    return token


def check_context_name(name: str) -> str:
    if not isinstance(name, str) or CONTEXT_NAME.fullmatch(name) is None:
        raise InvalidInput(f"context {name!r}: letters, digits, '.', '_' and '-', 63 at most"[:120])
    return name


def read_token_file(path: Path) -> str:
    try:
        with path.expanduser().open("rb") as f:
            raw = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"token file {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise ConfigError(f"token file {path} is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"token file {path}: not a token (printable characters)") from None
    return check_token(text, f"token file {path}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(path: Path) -> ClientConfig:
    """The client configuration; an empty one where there is no file."""
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return ClientConfig()
    except OSError as exc:
        raise ConfigError(f"client configuration {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"client configuration {path} is larger than 64 KiB")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"client configuration {path} is not valid TOML: {exc}") from None
    config = parse(data, str(path), path.parent)
    if any(c.token for c in config.contexts.values()) and info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise ConfigError(
            f"client configuration {path} holds a token and others may read it "
            f"(mode {mode:04o}): chmod 600 {path}"
        )
    return config


def parse(data: Mapping[str, Any], source: str, base: Path) -> ClientConfig:
    unknown = sorted(set(data) - {"current_context", "contexts"})
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}"[:200])
    current = data.get("current_context")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"{source}: current_context is not a string")
    tables = data.get("contexts", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: contexts is not a table")
    contexts: dict[str, Context] = {}
    for name, table in tables.items():
        where = f"{source}: context {name!r}"[:200]
        try:
            check_context_name(name)
        except InvalidInput as exc:
            raise ConfigError(f"{source}: {exc}") from None
        if name == LOCAL:
            raise ConfigError(f"{where}: 'local' is the data directory; name it otherwise")
        if not isinstance(table, dict):
            raise ConfigError(f"{where} is not a table")
        extra = sorted(set(table) - CONTEXT_KEYS)
        if extra:
            raise ConfigError(f"{where}: unknown setting {extra[0]!r}"[:200])
        values = {k: table.get(k) for k in CONTEXT_KEYS}
        if any(v is not None and not isinstance(v, str) for v in values.values()):
            raise ConfigError(f"{where}: server, token and token_file are strings")
        if values["server"] is None:
            raise ConfigError(f"{where} has no server")
        if values["token"] is not None and values["token_file"] is not None:
            raise ConfigError(f"{where}: token or token_file, not both")
        try:
            server = check_server(values["server"])
        except InvalidInput as exc:
            raise ConfigError(f"{where}: {exc}") from None
        token = values["token"]
        if token is not None:
            token = check_token(token, f"{where}: token")
        token_file = values["token_file"]
        if token_file is not None:
            token_file = str(base / Path(token_file).expanduser())
        contexts[name] = Context(name, server, token, token_file)
    return ClientConfig(current, contexts)


def resolve(
    server: str | None,
    token: str | None,
    context: str | None,
    context_is_explicit: bool,
    config: ClientConfig,
) -> Target | None:
    """Where commands go: a Target, or None for the data directory.

    ``server``: --server; ``token``: --token or COMPUTECTL_TOKEN; ``context``: --context or
    COMPUTECTL_CONTEXT (``context_is_explicit``) or else the file's current_context.
    A context's token goes only to that context's server: --server and --context exclude
    each other, and --server alone never takes a token from the file.
    """
    if server is not None and context_is_explicit:
        raise InvalidInput("give --server or --context, not both")
    if server is not None:
        target = Target(check_server(server), None, None, explicit=True)
    else:
        name = context if context_is_explicit else config.current
        if name is None or name == LOCAL:
            return None
        found = config.contexts.get(name)
        if found is None:
            known = ", ".join(sorted(config.contexts)) or "none configured"
            raise ConfigError(f"no context {name!r} (contexts: {known}, and local)"[:300])
        secret = found.token
        if secret is None and found.token_file is not None:
            secret = read_token_file(Path(found.token_file))
        target = Target(found.server, secret, name, explicit=context_is_explicit)
    if token is not None:
        target = replace(target, token=check_token(token, "--token / COMPUTECTL_TOKEN"))
    host = urlsplit(target.server).hostname or ""
    if target.token and target.server.startswith("http://") and not _is_loopback(host):
        raise ConfigError(
            f"a token goes to {host} over https only (or to a loopback address), "
            "not over plain http"
        )
    return target


def save(path: Path, config: ClientConfig) -> None:
    """Write the configuration whole, mode 0600, replacing the file in one step."""
    lines = []
    if config.current is not None:
        lines.append(f"current_context = {_quoted(config.current)}")
    for c in config.contexts.values():
        lines += ["", f"[contexts.{_quoted(c.name)}]", f"server = {_quoted(c.server)}"]
        if c.token is not None:
            lines.append(f"token = {_quoted(c.token)}")
        if c.token_file is not None:
            lines.append(f"token_file = {_quoted(c.token_file)}")
    text = "\n".join(lines).lstrip("\n") + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"client configuration {path}: {exc.strerror or exc}") from None


def _quoted(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ConfigError(f"{text!r} is not text that can be stored"[:200])
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
