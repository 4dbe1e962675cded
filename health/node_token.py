"""The node's own credential for reporting its health: bound to this node, never an operator's.

Where it comes from, the first that is there:

1. ``--token-file PATH``;
2. ``$COMPUTECTL_NODE_TOKEN``;
3. the projected ServiceAccount token of the node check's pod (DaemonSet or burn-in Job),
   mounted at `PROJECTED_TOKEN` (the kubernetes_health role); the kubelet renews it, so it is read
   afresh on every run;
4. `NODE_TOKEN_FILE`, a per-node token (``computectl tokens create --role node --node N``),
   mode 0600, owned by root (cron, Slurm's HealthCheckProgram, Slurm burn-in jobs).

None of them: the report goes without a credential (and the control plane refuses it). The
token is never printed; a file that cannot be used is one line naming the file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "COMPUTECTL_NODE_TOKEN"
PROJECTED_TOKEN = Path("/var/run/secrets/computectl/token")
NODE_TOKEN_FILE = Path("/etc/computectl/node-token")
DEFAULT_FILES = (PROJECTED_TOKEN, NODE_TOKEN_FILE)
MAX_TOKEN_BYTES = 16384
# What an HTTP header may carry as one bearer credential: printable ASCII, no blanks.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class TokenFileError(Exception):
    """The credential cannot be used: one line, naming where it came from, never the token."""


def node_token(
    token_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    defaults: tuple[Path, ...] = DEFAULT_FILES,
) -> str | None:
    """This node's token (see the module's docstring for the order), or None."""
    if token_file is not None:
        return read_token_file(token_file)
    env = os.environ if environ is None else environ
    from_env = env.get(TOKEN_ENV)
    if from_env:
        return _checked(from_env.strip(), f"${TOKEN_ENV}")
    for path in defaults:
        if path.exists():
            return read_token_file(path)
    return None


def read_token_file(path: Path) -> str:
    """The token in ``path``; refused if others than its owner and group may read it."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise TokenFileError(f"token file {path} is not a regular file")
        if st.st_mode & 0o007:
            raise TokenFileError(
                f"token file {path} is open to every user of this node "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it and issue a new token"
            )
        if st.st_size > MAX_TOKEN_BYTES:
            raise TokenFileError(f"token file {path} is larger than a token can be")
        data = path.read_bytes()
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"token file {path} does not hold a token") from None
    return _checked(text, f"token file {path}")


def _checked(token: str, where: str) -> str:
    if not token:
        raise TokenFileError(f"{where} is empty")
    if len(token) > MAX_TOKEN_BYTES or not _TOKEN.fullmatch(token):
        raise TokenFileError(f"{where} does not hold a token")
    return token
