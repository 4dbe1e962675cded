"""`computectl contexts`: named control planes (a server and its token) in the client's
configuration, and which one commands go to; "local" is the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import click

from compute.cli.output import emit_json, output_option, say, table
from compute.client import contexts as config
from compute.errors import InvalidInput


@click.group()
def contexts() -> None:
    """Where commands go: the data directory (local) or a control plane's API."""


def _path() -> Path:
    return config.config_path(os.environ)


@contexts.command("list")
@output_option
def contexts_list(output: str) -> None:
    """The contexts, the current one marked *; the file: $COMPUTECTL_CLIENT_CONFIG or
    ~/.config/computectl/config.toml."""
    path = _path()
    found = config.load(path)
    current = found.current or config.LOCAL
    rows = [
        {
            "name": c.name,
            "server": c.server,
            "token": "inline" if c.token else ("file" if c.token_file else None),
            "token_file": c.token_file,
        }
        for c in found.contexts.values()
    ]
    if output == "json":
        emit_json({"file": str(path), "current_context": current, "contexts": rows})
        return
    table(
        None,
        ["", "context", "server", "token"],
        [("*" if current == config.LOCAL else "", config.LOCAL, "(the data directory)", "")]
        + [
            (
                "*" if r["name"] == current else "",
                r["name"],
                r["server"],
                r["token_file"] or r["token"] or "none",
            )
            for r in rows
        ],
    )


@contexts.command("use")
@click.argument("name")
def contexts_use(name: str) -> None:
    """Send commands to context NAME from now on ("local": the data directory)."""
    path = _path()
    found = config.load(path)
    if name != config.LOCAL and name not in found.contexts:
        known = ", ".join(sorted(found.contexts)) or "none configured"
        raise InvalidInput(f"no context {name!r} (contexts: {known}, and local)"[:300])
    config.save(path, config.ClientConfig(name, found.contexts))
    say(f"current context: {name}")


@contexts.command("set")
@click.argument("name")
@click.option("--server", "url", required=True, metavar="URL", help="The control plane's URL.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the API token (kept where it is; the configuration names it).",
)
def contexts_set(name: str, url: str, token_file: Path | None) -> None:
    """Add context NAME (or change its server and token file)."""
    config.check_context_name(name)
    if name == config.LOCAL:
        raise InvalidInput("'local' is the data directory; name the context otherwise")
    server = config.check_server(url)
    path = _path()
    found = config.load(path)
    old = found.contexts.get(name)
    kept_token = old.token if old is not None and token_file is None else None
    kept_file = old.token_file if old is not None else None
    if token_file is not None:
        config.read_token_file(token_file)  # a token there now, or one line saying why not
        kept_file = str(token_file.expanduser().resolve())
    entry = config.Context(name, server, kept_token, kept_file)
    if entry.token or entry.token_file:
        config.resolve(None, None, name, True, config.ClientConfig(None, {name: entry}))
    config.save(path, config.ClientConfig(found.current, {**found.contexts, name: entry}))
    token = f" (token from {entry.token_file})" if entry.token_file else ""
    say(f"context {name}: {server}{token}")
    if found.current != name:
        say(f"send commands there: computectl contexts use {name}, or --context {name}")
