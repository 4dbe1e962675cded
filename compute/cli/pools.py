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
    from compute.services.pools import pool_view

    found = [pool_view(p) for p in obj.runtime().store.pools()]
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
    from compute.services.pools import pool_view, set_mode

    rt = obj.runtime()
    pool = set_mode(rt.store, rt.clock, name, mode, check, obj.actor)
    if output == "json":
        emit_json(pool_view(pool))
        return
    checks = f" (observed checks: {', '.join(pool.observe_checks)})" if pool.observe_checks else ""
    say(f"pool {pool.name}: {pool.mode}{checks}")


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


def _window(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    from compute.errors import InvalidInput
    from compute.services.pools import parse_window

    try:
        return parse_window(value)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


@pools.command("report")
@click.argument("name", type=POOL)
@click.option(
    "--since", default="24h", show_default=True, callback=_window, help="Window: 90s, 30m, 24h, 7d."
)
@output_option
@click.pass_obj
def pools_report(obj: CliContext, name: str, since: object, output: str) -> None:
    """What would have happened in pool NAME over the window: drains, resumes and burn-ins
    by check, and which nodes."""
    from datetime import timedelta

    from compute.services.pools import report, report_view

    assert isinstance(since, timedelta)
    rt = obj.runtime()
    data = report_view(report(rt.store, rt.clock, name, since))
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
