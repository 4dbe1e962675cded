"""`computectl tokens`: API tokens for people, scripts and nodes. A token is printed once,
when it is made; the store keeps only its digest and a short prefix to recognise it by.

On the data directory the command acts as the local operator (whoever can read the data
directory already owns the database)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table
from compute.cli.params import NODE, POOL, SHORT_TEXT, TENANT
from compute.errors import InvalidInput

if TYPE_CHECKING:
    from compute.auth.principal import Principal

ROLES = ["operator", "viewer", "tenant-admin", "tenant-member", "node"]


@click.group()
def tokens() -> None:
    """API tokens: create, list, revoke."""


def _local(obj: CliContext) -> Principal:
    from compute.auth.principal import local_principal

    return local_principal(obj.actor.split(":", 1)[-1])


@tokens.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--tenant", type=TENANT, default=None, help="Its tenant (tenant roles).")
@click.option("--node", type=NODE, default=None, help="Its node (the node role).")
@click.option(
    "--pool",
    type=POOL,
    default=None,
    help="With --role node and no --node: one token for each node of the pool.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --pool: write each node's token to DIR/<node>.token (mode 0600) instead of "
    "printing them.",
)
@click.option("--expires", default=None, metavar="SPAN", help="Lifetime: 3600s, 90m, 12h, 30d.")
@click.option("--name", type=SHORT_TEXT, default=None, help="What it is for (shown in lists).")
@output_option
@click.pass_obj
def tokens_create(
    obj: CliContext,
    role: str,
    tenant: str | None,
    node: str | None,
    pool: str | None,
    out_dir: Path | None,
    expires: str | None,
    name: str | None,
    output: str,
) -> None:
    """Make a token and print it, once: it cannot be shown again."""
    if pool is not None and (role != "node" or node is not None or tenant is not None):
        raise InvalidInput("--pool issues node tokens: give it with --role node alone")
    if out_dir is not None and pool is None:
        raise InvalidInput("--out-dir goes with --pool")
    if pool is not None:
        # A pool's node tokens are made on the data directory (no API route takes a pool).
        from compute.auth.tokens import parse_lifetime
        from compute.services import tokens as service

        try:
            lifetime = parse_lifetime(expires) if expires is not None else None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        rt = obj.runtime()
        now, at = datetime.now(UTC), rt.clock.now()
        made = service.create_for_pool(
            rt.store, _local(obj), pool, lifetime=lifetime, now=now, at=at
        )
        views = [service.created_view(c, now) for c in made]
        if out_dir is not None:
            _write_tokens(out_dir, views)
            for v in views:
                v.pop("token")
            if output == "json":
                emit_json(views)
            else:
                say(f"{len(views)} node tokens of pool {pool} written to {out_dir}/<node>.token")
            return
    else:
        views = [obj.client().create_token(role, tenant, node, expires, name)]
    if output == "json":
        emit_json(views if pool is not None else views[0])
        return
    for v in views:
        bound = v["tenant"] or v["node"] or ""
        say(f"token {v['id']} ({v['role']}{' ' + bound if bound else ''}): {v['token']}")
    say("Shown once: the control plane keeps only its digest.")


def _write_tokens(out_dir: Path, views: list[dict[str, Any]]) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for v in views:
            path = out_dir / f"{v['node']}.token"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(v["token"] + "\n")
    except OSError as exc:
        raise InvalidInput(f"cannot write tokens to {out_dir}: {exc.strerror or exc}") from None


@tokens.command("list")
@output_option
@click.pass_obj
def tokens_list(obj: CliContext, output: str) -> None:
    """Tokens: who and what each is for, its state and last use; never the token."""
    found = obj.client().tokens()
    if output == "json":
        emit_json(found)
        return
    table(
        None,
        ["id", "prefix", "name", "role", "tenant/node", "state", "expires", "last used", "by"],
        [
            (
                t["id"],
                t["prefix"],
                t["name"],
                t["role"],
                t["tenant"] or t["node"] or "",
                t["state"],
                t["expires_at"] or "never",
                t["last_used_at"] or "",
                t["created_by"],
            )
            for t in found
        ],
    )


@tokens.command("revoke")
@click.argument("id_", metavar="ID", type=click.IntRange(1, 2**62))
@output_option
@click.pass_obj
def tokens_revoke(obj: CliContext, id_: int, output: str) -> None:
    """Revoke a token: it is refused from now on, and its browser sessions end."""
    view = obj.client().revoke_token(id_)
    if output == "json":
        emit_json(view)
        return
    say(f"token {view['id']} ({view['prefix']}, {view['role']}) revoked at {view['revoked_at']}")
