"""`computectl capacity`: GPUs by state, pool and model, and by tenant.

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, state_style, table


@click.command()
@output_option
@click.pass_obj
def capacity(obj: CliContext, output: str) -> None:
    """GPUs by state x pool x model (summing to the installed count), and by tenant."""
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
