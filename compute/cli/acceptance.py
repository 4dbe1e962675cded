"""`computectl acceptance create|run|status|report|list`: bringing a tranche of new capacity
into service (docs/acceptance.md).

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
POOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@click.group()
def acceptance() -> None:
    """Tranches of new capacity: burn-in, pair test, report, into service."""


def _name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not NAME.fullmatch(value):
        raise click.BadParameter("1-64 letters, digits, '.', '_' or '-'")
    return value


def _pool(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not POOL.fullmatch(value):
        raise click.BadParameter("a pool name: 1-64 letters, digits, '.', '_' or '-'")
    return value


def _threshold(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise click.BadParameter("a share above 0 and at most 1 (0.95 is 95 %)")
    return value


def _hostlist(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value.strip() or len(value) > 65_536 or not value.isprintable()):
        raise click.BadParameter("a Slurm hostlist (gpu-[001-016]) of printable characters")
    return value


@acceptance.command("create")
@click.argument("name", callback=_name)
@click.option("--nodes", "hostlist", default=None, callback=_hostlist, help="gpu-[001-016]")
@click.option("--pool", default=None, callback=_pool, help="Every node of this pool.")
@click.option(
    "--threshold",
    type=float,
    default=0.95,
    show_default=True,
    callback=_threshold,
    help="Share of its nodes accepted for the tranche to go live.",
)
@output_option
@click.pass_obj
def create(
    obj: CliContext, name: str, hostlist: str | None, pool: str | None, threshold: float,
    output: str,
) -> None:  # fmt: skip
    """A new tranche: its nodes (a hostlist) or a pool's."""
    if (hostlist is None) == (pool is None):
        raise click.UsageError("give --nodes HOSTLIST or --pool P (one of them)")
    view = obj.client().acceptance_create(name, [hostlist] if hostlist else [], pool, threshold)
    if output == "json":
        emit_json(view)
        return
    say(f"tranche {view['name']}: {view['nodes']} nodes, threshold {view['threshold']:g}")


@acceptance.command("run")
@click.argument("name", callback=_name)
@output_option
@click.pass_obj
def run(obj: CliContext, name: str, output: str) -> None:
    """Start the run; the control plane carries it out after its sweeps (see `status`)."""
    view = obj.client().acceptance_run(name)
    if output == "json":
        emit_json(view)
        return
    say(f"tranche {view['name']}: running ({view['nodes']} nodes); `acceptance status {name}`")


def _status_row(v: dict[str, Any]) -> tuple[Any, ...]:
    share = "-" if v["share"] is None else f"{float(v['share']):.1%}"
    burn = ", ".join(f"{k} {n}" for k, n in sorted(v["burn_in"].items())) or "-"
    return (v["name"], v["state"], v["phase"] or "-", v["nodes"], burn, share, v["threshold"])


_STATUS_COLUMNS = ["tranche", "state", "phase", "nodes", "burn-in", "accepted", "threshold"]


@acceptance.command("status")
@click.argument("name", callback=_name)
@output_option
@click.pass_obj
def status(obj: CliContext, name: str, output: str) -> None:
    """Where the tranche's run stands."""
    view = obj.client().acceptance_status(name)
    if output == "json":
        emit_json(view)
        return
    table(None, _STATUS_COLUMNS, [_status_row(view)])


@acceptance.command("list")
@output_option
@click.pass_obj
def listing(obj: CliContext, output: str) -> None:
    """Every tranche."""
    view = obj.client().acceptance_list()
    if output == "json":
        emit_json(view)
        return
    if not view["tranches"]:
        say("no tranche: `computectl acceptance create NAME --nodes HOSTLIST`")
        return
    table(None, _STATUS_COLUMNS, [_status_row(v) for v in view["tranches"]])


@acceptance.command("report")
@click.argument("name", callback=_name)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the report as one self-contained HTML page.",
)
@output_option
@click.pass_obj
def report(obj: CliContext, name: str, html_file: Path | None, output: str) -> None:
    """Per node pass or fail with evidence, the RMA list, fabric suspects, share accepted."""
    view = obj.client().acceptance_report(name)
    if html_file is not None:
        from compute.services.acceptance_html import render

        html_file.write_text(render(view), encoding="utf-8")
    if output == "json":
        emit_json(view)
        return
    verdict = "LIVE" if view["live"] else view["state"]
    say(
        f"tranche {view['name']}: {verdict}: {view['accepted']} of {view['total']} accepted "
        f"({float(view['share']):.1%}, threshold {float(view['threshold']):.1%})"
    )
    if view["rma"]:
        table(
            "RMA list",
            ["node", "state", "suspect GPUs", "checks", "reason"],
            [
                (r["node"], r["state"], ",".join(map(str, r["suspect_gpus"])) or "-",
                 ",".join(r["checks"]), r["reason"])
                for r in view["rma"]
            ],
        )  # fmt: skip
    for node, evidence in view["suspect_nodes"].items():
        say(f"fabric suspect node {node}: {evidence}")
    for link in view["suspect_links"]:
        say(f"fabric suspect link {' - '.join(link)}")
    if html_file is not None:
        say(f"HTML report written to {html_file}")
