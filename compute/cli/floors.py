"""`computectl floors report [--model M]`: how burn-in floors moved, per GPU model, software
stack and check (the fixed floor, the learned one, its samples, the fleet's median now, a
week and a month ago).

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

import re
from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table

MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@click.group()
def floors() -> None:
    """Burn-in floors: fixed, learned from the fleet, and how they moved."""


def _model(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not MODEL.fullmatch(value):
        raise click.BadParameter("a GPU model name: 1-64 letters, digits, '.', '_' or '-'")
    return value


@floors.command("report")
@click.option("--model", default=None, callback=_model, help="Only this GPU model (H200).")
@output_option
@click.pass_obj
def report(obj: CliContext, model: str | None, output: str) -> None:
    """Per model, stack and check: samples, fixed and learned floor, median now and before."""
    view = obj.client().floors_report(model)
    if output == "json":
        emit_json(view)
        return
    if not view["floors"]:
        say(view["note"] or "no burn-in figures to learn floors from in the window")
        return
    table(
        f"Burn-in floors (learned {view['computed_at']}, from burn-ins since {view['since']})",
        [
            "model",
            "stack",
            "check",
            "samples",
            "fixed",
            "learned",
            "median",
            "week ago",
            "month ago",
        ],
        [_row(r) for r in view["floors"]],
    )


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def _row(r: dict[str, Any]) -> tuple[Any, ...]:
    learned = _num(r["learned_floor"]) if r["learned"] else f"fixed ({r['reason']})"
    return (
        r["model"],
        r["stack"],
        r["check"],
        f"{r['samples']} from {r['nodes']} nodes",
        f"{_num(r['fixed_floor'])} {r['unit']}",
        learned,
        _num(r["median"]),
        _num(r["median_week_ago"]),
        _num(r["median_month_ago"]),
    )
