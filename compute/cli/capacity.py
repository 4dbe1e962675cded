"""`computectl capacity`: GPUs by state, pool and model, and by tenant; with --forecast,
capacity planning (free GPUs, allocation trend, days until full, power headroom per rack and
room, N-1 headroom, what adding nodes would draw).

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, state_style, table


@click.command()
@click.option(
    "--forecast",
    is_flag=True,
    help="Capacity planning: free GPUs, trend, days until full, power headroom, N-1.",
)
@click.option(
    "--add",
    "adds",
    multiple=True,
    metavar="K:MODEL:ROOM",
    help="With --forecast: what adding K nodes of MODEL to ROOM would draw (repeatable).",
)
@output_option
@click.pass_obj
def capacity(obj: CliContext, forecast: bool, adds: tuple[str, ...], output: str) -> None:
    """GPUs by state x pool x model (summing to the installed count), and by tenant."""
    if adds and not forecast:
        raise click.UsageError("--add goes with --forecast")
    if forecast:
        _forecast(obj.client().capacity_forecast(list(adds)), output)
        return
    cap = obj.client().capacity()
    if output == "json":
        emit_json(cap)
        return
    rows: list[tuple[Any, ...]] = [
        (r["pool"], r["gpu_model"], r["state"], r["gpus"]) for r in cap["by_state"]
    ]
    rows.append(("total", "", "", cap["total_gpus"]))
    table("GPUs by state", ["pool", "model", "state", "gpus"], rows, styles={2: state_style})
    if cap["by_tenant"]:
        table(
            "GPUs allocated by tenant",
            ["tenant", "pool", "model", "gpus"],
            [(t["tenant"], t["pool"], t["gpu_model"], t["gpus"]) for t in cap["by_tenant"]],
        )


def _kw(watts: float) -> str:
    return f"{watts / 1000:.1f}"


def _days(row: dict[str, Any]) -> str:
    days = row["days_until_full"]
    if days is None:
        return "not filling"
    return "full" if days == 0 else f"{days:.1f}"


def _forecast(view: dict[str, Any], output: str) -> None:
    if output == "json":
        emit_json(view)
        return
    table(
        f"Free GPUs (trend over {view['trend_days']:g} days)",
        ["pool", "model", "installed", "usable", "allocated", "free", "GPUs/day", "days to full"],
        [
            (
                r["pool"],
                r["gpu_model"],
                r["installed"],
                r["usable"],
                r["allocated"],
                r["free"],
                f"{r['trend_gpus_per_day']:+.2f}",
                _days(r),
            )
            for r in view["free"]
        ],
    )
    table(
        "Power per rack (kW)",
        ["rack", "room", "draw", "forecast", "limit", "headroom", "over"],
        [
            (
                r["rack"],
                r["room"],
                _kw(r["watts"]),
                _kw(r["forecast_watts"]),
                _kw(r["limit_watts"]),
                _kw(r["headroom_watts"]),
                "OVER" if r["over_budget"] else "",
            )
            for r in view["racks"]
        ],
    )
    table(
        "Power per room (kW)",
        ["room", "site", "draw", "limit", "headroom"],
        [
            (r["room"], r["site"], _kw(r["watts"]), _kw(r["limit_watts"]), _kw(r["headroom_watts"]))
            for r in view["rooms"]
        ],
    )
    table(
        "N-1: the largest rack lost",
        ["pool", "largest rack", "its GPUs", "free GPUs after"],
        [
            (r["pool"], r["largest_rack"], r["rack_gpus"], r["free_after"])
            for r in view["n_minus_one"]
        ],
    )
    for a in view["additions"]:
        verdict = "fits" if a["fits"] else "does NOT fit"
        say(
            f"+{a['nodes']} x {a['gpu_model']} in {a['room']}: "
            f"{_kw(a['added_watts'])} kW ({_kw(a['watts_per_node'])} kW/node, "
            f"{a['watts_source']}); room {_kw(a['room_watts_after'])} of "
            f"{_kw(a['room_limit_watts'])} kW: {verdict} "
            f"(headroom {_kw(a['headroom_after_watts'])} kW)"
        )
