"""`computectl nodes ...`"""

from __future__ import annotations

import click

from compute.api.views import detail_as_dict
from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, state_style, table
from compute.services.nodes import node_as_dict


@click.group()
def nodes() -> None:
    """GPU nodes: list, show, drain, resume, retire."""


@nodes.command("list")
@click.option("--pool", help="Only this pool.")
@click.option("--state", help="Only this lifecycle state (e.g. drained).")
@output_option
@click.pass_obj
def list_nodes(obj: CliContext, pool: str | None, state: str | None, output: str) -> None:
    """List nodes with their state, jobs and drain reason."""
    found = obj.runtime().nodes.list(pool=pool, state=state)
    if output == "json":
        emit_json([node_as_dict(n) for n in found])
        return
    table(
        None,
        ["node", "pool", "rack", "gpus", "state", "jobs", "reason"],
        [
            (
                n.name,
                n.pool,
                n.rack,
                f"{n.gpus_allocated}/{n.gpu_count} {n.gpu_model}",
                n.state.value,
                n.jobs_running,
                n.drain_reason or (f"waiting: {n.deferred_reason}" if n.deferred_reason else ""),
            )
            for n in found
        ],
        styles={4: state_style},
    )


@nodes.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(obj: CliContext, name: str, output: str) -> None:
    """One node: state, GPUs, latest check results, recent events."""
    detail = obj.runtime().nodes.detail(name)
    if output == "json":
        emit_json(detail_as_dict(detail))
        return
    n = detail.node
    rows = [
        ("node", n.name),
        ("pool", n.pool),
        ("rack", n.rack),
        ("gpus", f"{n.gpu_count} x {n.gpu_model} ({n.gpus_allocated} allocated)"),
        ("state", f"{n.state.value} since {n.state_since:%Y-%m-%d %H:%M:%S}"),
        ("jobs", n.jobs_running),
        ("backend state", n.backend_state),
    ]
    if n.drain_reason:
        rows.append(
            (
                "drain",
                f"{n.drain_reason} (owner: "
                f"{n.drain_owner.value if n.drain_owner else '?'}, by {n.drain_actor or '?'})",
            )
        )
    if n.deferred_reason:
        rows.append(("waiting", n.deferred_reason))
    if n.health.finding:
        f = n.health.finding
        rows.append(("finding", f"{f.check}{' (fatal)' if f.fatal else ''}: {f.evidence}"))
    if n.health.burn_in_failures:
        rows.append(("burn-in failures", n.health.burn_in_failures))
    table(None, ["", ""], rows)
    if detail.results:
        table(
            "latest results",
            ["check", "suite", "status", "at", "evidence"],
            [
                (r.check, r.suite.value, r.status.value, f"{r.at:%H:%M:%S}", r.evidence)
                for r in detail.results
            ],
            styles={2: lambda v: {"pass": "green", "warn": "yellow", "fail": "red"}[str(v)]},
        )
    if detail.gpus:
        table(
            "GPUs",
            ["index", "uuid", "serial", "model"],
            [(g.index, g.uuid, g.serial, g.model) for g in detail.gpus],
        )
    if detail.events:
        table(
            "events",
            ["time", "event", "reason", "actor"],
            [(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.reason, e.actor) for e in detail.events],
        )


@nodes.command()
@click.argument("name")
@click.option("--reason", required=True, help="Why (recorded with a 'computectl:' prefix).")
@click.option(
    "--now", "now_mode", is_flag=True, help="Take the node down now, ending its running jobs."
)
@output_option
@click.pass_obj
def drain(obj: CliContext, name: str, reason: str, now_mode: bool, output: str) -> None:
    """Drain NAME: no new work; running jobs finish unless --now."""
    service = obj.runtime().nodes
    node = service.drain(name, reason, actor=obj.actor, now_mode=now_mode)
    left = service.left_running(name)
    if output == "json":
        emit_json({**node_as_dict(node), "left_running": list(left)})
        return
    click.echo(f"{node.name}: {node.state.value} ({node.drain_reason})")
    for item in left:
        click.echo(f"  left running (a disruption budget protects it): {item}")


@nodes.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Also lift a drain someone else made.")
@click.option("--skip-burn-in", is_flag=True, help="Back to service without burn-in.")
@output_option
@click.pass_obj
def resume(obj: CliContext, name: str, force: bool, skip_burn_in: bool, output: str) -> None:
    """Return NAME to service, through burn-in unless --skip-burn-in."""
    node = obj.runtime().nodes.resume(name, actor=obj.actor, force=force, skip_burn_in=skip_burn_in)
    if output == "json":
        emit_json(node_as_dict(node))
    else:
        click.echo(f"{node.name}: {node.state.value}")


@nodes.command()
@click.argument("name")
@click.pass_obj
def retire(obj: CliContext, name: str) -> None:
    """Retire NAME for good (it must be drained or in repair)."""
    node = obj.runtime().nodes.retire(name, actor=obj.actor)
    click.echo(f"{node.name}: {node.state.value}")


@nodes.command("rma-report")
@click.argument("name")
@output_option
@click.pass_obj
def rma_report(obj: CliContext, name: str, output: str) -> None:
    """The evidence an RMA ticket needs: serials, UUIDs, XIDs, burn-in figures, history."""
    from compute.services.rma import rma_report as build

    rt = obj.runtime()
    report = build(rt.store, rt.nodes.get(name))
    if output == "json":
        emit_json(report.as_dict())
    else:
        click.echo(report.as_text())
