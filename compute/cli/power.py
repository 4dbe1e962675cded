"""`computectl power`: GPU power readings, caps (applied by each node's agent) and reverts.

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

import re
from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table
from compute.cli.params import NODE, REASON, SHORT_TEXT

_SPAN = re.compile(r"([0-9]{1,7})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_GPU_INDEX = 31


def duration(text: str) -> float:
    """ "90m", "4h", "2d": seconds."""
    m = _SPAN.fullmatch(text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r:.40} is not a duration such as 30m, 4h or 2d")
    return float(int(m.group(1)) * _UNIT[m.group(2)])


def gpu_list(text: str) -> list[int]:
    """ "0,1,3": GPU indices."""
    try:
        found = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise click.BadParameter(
            f"{text!r:.40} is not a list of GPU indices such as 0,1,3"
        ) from None
    if not found or not all(0 <= i <= MAX_GPU_INDEX for i in found):
        raise click.BadParameter(f"GPU indices are 0-{MAX_GPU_INDEX}")
    return found


def _w(v: Any) -> str:
    return "-" if v is None else f"{v:g}"


def _limits(m: dict[str, Any]) -> str:
    return ",".join(f"{k}:{_w(v)}" for k, v in sorted(m.items(), key=lambda kv: int(kv[0])))


def _caps_table(caps: list[dict[str, Any]], title: str | None = None) -> None:
    table(
        title,
        ["id", "node", "gpus", "watts", "state", "source", "by", "expires", "before", "after",
         "detail"],
        [
            (c["id"], c["node"], "all" if c["gpus"] is None else ",".join(map(str, c["gpus"])),
             _w(c["watts"]), c["state"], c["source"], c["actor"], c["expires_at"] or "-",
             _limits(c["before"]), _limits(c["after"]), c["detail"] or c["reason"])
            for c in caps
        ],
    )  # fmt: skip


@click.group()
def power() -> None:
    """GPU power: readings, caps (through the node agent) and their reverts."""


@power.command("cap")
@click.argument("node", type=NODE, required=False)
@click.option("--rack", type=SHORT_TEXT, default=None, help="Every node of this rack.")
@click.option(
    "--watts", type=click.FloatRange(1, 5000), required=True, help="Each GPU's limit (W)."
)
@click.option("--gpus", default=None, help="GPU indices, e.g. 0,1,3 (default: all).")
@click.option("--reason", type=REASON, default="operator cap", show_default=True)
@click.option(
    "--for",
    "for_",
    default=None,
    help="Reverted by itself after this (30m, 4h, 2d); default [power] default_cap_hours.",
)
@output_option
@click.pass_obj
def power_cap(
    obj: CliContext,
    node: str | None,
    rack: str | None,
    watts: float,
    gpus: str | None,
    reason: str,
    for_: str | None,
    output: str,
) -> None:
    """Cap GPUs' power on NODE or --rack R: recorded now, applied by each node's agent
    (clamped to each GPU's min/max, read back), audited."""
    if (node is None) == (rack is None):
        raise click.UsageError("give NODE or --rack (one of them)")
    made = obj.client().power_cap(
        None if node is None else [node], rack, watts,
        None if gpus is None else gpu_list(gpus), reason,
        None if for_ is None else duration(for_),
    )  # fmt: skip
    if output == "json":
        emit_json(made)
        return
    _caps_table(made)
    say(f"{len(made)} cap(s) pending: each node applies its cap at its next report")


@power.command("revert")
@click.argument("node", type=NODE, required=False)
@click.option("--rack", type=SHORT_TEXT, default=None, help="Every node of this rack.")
@click.option("--cap", "cap_ids", type=click.IntRange(1, 2**62), multiple=True, help="A cap id.")
@click.option("--reason", type=REASON, default="operator revert", show_default=True)
@output_option
@click.pass_obj
def power_revert(
    obj: CliContext,
    node: str | None,
    rack: str | None,
    cap_ids: tuple[int, ...],
    reason: str,
    output: str,
) -> None:
    """Revert the caps of NODE, --rack R or --cap ID: each node restores the limits it
    had before (or the default)."""
    if sum(x is not None and x != () for x in (node, rack, cap_ids)) != 1:
        raise click.UsageError("give NODE, --rack or --cap (one of them)")
    done = obj.client().power_revert(
        None if node is None else [node], rack, list(cap_ids) or None, reason
    )
    if output == "json":
        emit_json(done)
        return
    _caps_table(done)
    say(f"{len(done)} cap(s) reverting or cancelled" if done else "no active cap to revert")


@power.command("list")
@click.option("--all", "all_", is_flag=True, help="Ended caps too (reverted, superseded).")
@click.option("--node", type=NODE, default=None)
@output_option
@click.pass_obj
def power_list(obj: CliContext, all_: bool, node: str | None, output: str) -> None:
    """Active caps (pending, applied, failed, reverting), oldest first."""
    found = obj.client().power_caps(not all_, node)
    if output == "json":
        emit_json(found)
        return
    _caps_table(found)


@power.command("show")
@click.argument("node", type=NODE)
@output_option
@click.pass_obj
def power_show(obj: CliContext, node: str, output: str) -> None:
    """NODE's latest readings (per GPU: draw and limits; the BMC's), caps and recent draw."""
    data = obj.client().power_show(node)
    if output == "json":
        emit_json(data)
        return
    r = data["reading"]
    if r is None:
        say(f"{node} (rack {data['rack']}): no power reading yet")
    else:
        bmc = f"{_w(r['node_watts'])} W ({r['node_source']})" if r["node_watts"] is not None \
            else r["node_error"] or "not available"  # fmt: skip
        stale = " (stale)" if r["stale"] else ""
        say(f"{node} (rack {data['rack']}) at {r['at']}{stale}: GPUs {_w(r['gpu_watts'])} W, "
            f"node {bmc}")  # fmt: skip
        table(
            "GPUs",
            ["gpu", "draw W", "limit W", "default W", "min W", "max W"],
            [(g["index"], _w(g["power_watts"]), _w(g["limit_watts"]),
              _w(g["default_limit_watts"]), _w(g["min_limit_watts"]), _w(g["max_limit_watts"]))
             for g in r["gpus"]],
        )  # fmt: skip
    if data["caps"]:
        _caps_table(data["caps"], "caps")
    if data["series"]:
        s = data["series"]
        say(f"last day: {len(s)} samples, mean {sum(p['watts'] for p in s) / len(s):.0f} W, "
            f"peak {max(p['peak_watts'] for p in s):.0f} W")  # fmt: skip
