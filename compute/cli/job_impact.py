"""`computectl tenants incidents NAME`: the tenant's jobs and pods that infrastructure faults
hit in a month, and the GPU-hours they lost (compute/services/job_impact.py)."""

from __future__ import annotations

import re

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, stamp, table
from compute.cli.params import TENANT

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _MONTH.fullmatch(value):
        raise click.BadParameter(f"{value[:20]!r} is not a month (YYYY-MM)")
    return value


@click.command()
@click.argument("name", type=TENANT)
@click.option("--month", callback=_month, help="The UTC month (YYYY-MM); default this one.")
@output_option
@click.pass_obj
def incidents(obj: CliContext, name: str, month: str | None, output: str) -> None:
    """NAME's jobs and pods hit by infrastructure faults (a node computectl drained for a
    fault, or a node failure with a finding), and the GPU-hours they lost."""
    view = obj.client().tenant_incidents(name, month)
    if output == "json":
        emit_json(view)
        return
    rows = view["incidents"]
    if not rows:
        say(f"tenant {name}: no incidents in {view['month']}")
        return
    table(
        f"tenant {name}: {view['count']} incident(s) in {view['month']}"
        + (f" (the newest {len(rows)} shown)" if len(rows) < view["count"] else "")
        + ", "
        f"{view['gpu_hours_lost']:.2f} GPU-hours lost",
        ["when (UTC)", "job/pod", "node", "cause", "check", "GPUs", "GPU-hours lost", "state"],
        [
            (
                stamp(r["at"], "%Y-%m-%d %H:%M"),
                r["work"],
                r["node"],
                r["cause"],
                r["check"] or "-",
                r["gpus"],
                f"{r['gpu_hours_lost']:.2f}",
                r["state"],
            )
            for r in rows
        ],
    )
