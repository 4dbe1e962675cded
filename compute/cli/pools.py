"""`computectl pools`: each pool's mode (observe or enforce, per check too) and what observe
mode saw. What a command needs beyond click is imported when it runs."""

from __future__ import annotations

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table
from compute.cli.params import POOL, SHORT_TEXT

_CHECK = click.option(
    "--check", type=SHORT_TEXT, default=None, help="Only this check, in an enforcing pool."
)


@click.group()
def pools() -> None:
    """Pools: list, observe, enable, report."""


@pools.command("list")
@output_option
@click.pass_obj
def pools_list(obj: CliContext, output: str) -> None:
    """Pools with their mode: observe (nothing is done, what would be is recorded) or enforce."""
    found = obj.client().pools()
    if output == "json":
        emit_json(found)
        return
    table(
        None,
        ["pool", "backend", "mode", "observed checks", "since", "by"],
        [
            (
                p["name"],
                p["backend"],
                p["mode"],
                ", ".join(p["observe_checks"]),
                p["mode_changed_at"] or "",
                p["mode_actor"],
            )
            for p in found
        ],
    )


def _set(obj: CliContext, name: str, mode: str, check: str | None, output: str) -> None:
    pool = obj.client().set_pool_mode(name, mode, check)
    if output == "json":
        emit_json(pool)
        return
    observed = pool["observe_checks"]
    checks = f" (observed checks: {', '.join(observed)})" if observed else ""
    say(f"pool {pool['name']}: {pool['mode']}{checks}")


@pools.command("observe")
@click.argument("name", type=POOL)
@_CHECK
@output_option
@click.pass_obj
def pools_observe(obj: CliContext, name: str, check: str | None, output: str) -> None:
    """Record what would be done in pool NAME (or for one check) and do nothing."""
    _set(obj, name, "observe", check, output)


@pools.command("enable")
@click.argument("name", type=POOL)
@_CHECK
@output_option
@click.pass_obj
def pools_enable(obj: CliContext, name: str, check: str | None, output: str) -> None:
    """Let computectl act in pool NAME (or on one check it observed)."""
    _set(obj, name, "enforce", check, output)


@pools.command("report")
@click.argument("name", type=POOL)
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Window: 90s, 30m, 24h, 7d (up to 366d).",
)
@output_option
@click.pass_obj
def pools_report(obj: CliContext, name: str, since: str, output: str) -> None:
    """What would have happened in pool NAME over the window: drains, resumes and burn-ins
    by check, and which nodes."""
    data = obj.client().pool_report(name, since)
    if output == "json":
        emit_json(data)
        return
    say(f"pool {data['pool']} ({data['mode']}), {data['since']} .. {data['until']}")
    rows = [
        (action, check, n, ", ".join(w["nodes"]) if i == 0 else "")
        for action, w in data["would"].items()
        for i, (check, n) in enumerate(w["by_check"].items())
    ]
    table("would have", ["action", "check", "nodes", "which"], rows)
    held = data["held"]
    if held["drains"]:
        say(f"drains held by the brake: {held['drains']} ({', '.join(held['nodes'])})")
