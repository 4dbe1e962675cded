"""`computectl nodes ...`"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, error_line, output_option, say, state_style, table
from compute.cli.params import NODE, POOL, REASON
from health.inputs import MAX_REASON
from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.services.batch import Batch


@click.group()
def nodes() -> None:
    """GPU nodes: list, show, drain, resume, retire, pair-test."""


@nodes.command("list")
@click.option("--pool", type=POOL, help="Only this pool.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in Lifecycle]),
    help="Only this lifecycle state (e.g. drained).",
)
@output_option
@click.pass_obj
def list_nodes(obj: CliContext, pool: str | None, state: str | None, output: str) -> None:
    """List nodes with their state, jobs and drain reason."""
    from compute.services import fleet

    found = fleet.nodes(obj.store(), pool=pool, state=state)
    if output == "json":
        from compute.views import node_view

        emit_json([node_view(n) for n in found])
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
@click.argument("name", type=NODE)
@output_option
@click.pass_obj
def show(obj: CliContext, name: str, output: str) -> None:
    """One node: state, GPUs, latest check results, recent events."""
    detail = obj.runtime().nodes.detail(name)
    if output == "json":
        from compute.views import node_detail_view

        emit_json(node_detail_view(detail))
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


def _targets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """A name is checked as NODE checks one; a hostlist when it is expanded."""
    return tuple(v if "[" in v or "," in v else NODE.convert(v, param, ctx) for v in values)


def _ended(batch: Batch, verb: str) -> None:
    """Each refusal on its line, then the exit code: 4 if some were done, else the refusal's."""
    error = batch.error(verb)
    if error is None:
        return
    if batch.done:
        for refused in batch.refused.values():
            error_line(str(refused))
    raise error


@nodes.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...", callback=_targets)
@click.option(
    "--reason",
    type=REASON,
    required=True,
    help=f"Why (recorded with a 'computectl:' prefix; {MAX_REASON} characters at most).",
)
@click.option(
    "--now", "now_mode", is_flag=True, help="Take the node down now, ending its running jobs."
)
@output_option
@click.pass_obj
def drain(
    obj: CliContext, names: tuple[str, ...], reason: str, now_mode: bool, output: str
) -> None:
    """Drain NAME...: no new work; running jobs finish unless --now.

    NAME may be a Slurm hostlist (gpu-[001-016]); each backend is asked once for all.
    A node refused stops none of the others (exit 4; with none drained, 2 or 3).
    """
    service = obj.runtime().nodes
    batch = service.drain_many(names, reason, actor=obj.actor, now_mode=now_mode)
    # What each drain left running (a disruption budget) is kept with the node.
    done = [(node, node.health.drain_blocked) for node in batch.done]
    if output == "json":
        from compute.views import drained_view

        views = [drained_view(node, left) for node, left in done]
        if views:
            emit_json(views[0] if len(batch.done) + len(batch.refused) == 1 else views)
    else:
        for node, left in done:
            say(f"{node.name}: {node.state.value} ({node.drain_reason})")
            for item in left:
                say(f"  left running (a disruption budget protects it): {item}")
    _ended(batch, "drained")


@nodes.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...", callback=_targets)
@click.option("--force", is_flag=True, help="Also lift a drain someone else made.")
@click.option("--skip-burn-in", is_flag=True, help="Back to service without burn-in.")
@output_option
@click.pass_obj
def resume(
    obj: CliContext, names: tuple[str, ...], force: bool, skip_burn_in: bool, output: str
) -> None:
    """Return NAME... to service, through burn-in unless --skip-burn-in.

    NAME may be a Slurm hostlist, as for drain; so are refusals and exit codes.
    """
    batch = obj.runtime().nodes.resume_many(
        names, actor=obj.actor, force=force, skip_burn_in=skip_burn_in
    )
    if output == "json":
        from compute.views import node_view

        views = [node_view(node) for node in batch.done]
        if views:
            emit_json(views[0] if len(batch.done) + len(batch.refused) == 1 else views)
    else:
        for node in batch.done:
            click.echo(f"{node.name}: {node.state.value}")
    _ended(batch, "resumed")


@nodes.command()
@click.argument("name", type=NODE)
@click.pass_obj
def retire(obj: CliContext, name: str) -> None:
    """Retire NAME for good (it must be drained or in repair)."""
    node = obj.runtime().nodes.retire(name, actor=obj.actor)
    click.echo(f"{node.name}: {node.state.value}")


@nodes.command("rma-report")
@click.argument("name", type=NODE)
@output_option
@click.pass_obj
def rma_report(obj: CliContext, name: str, output: str) -> None:
    """The evidence an RMA ticket needs: serials, UUIDs, XIDs, burn-in figures, history."""
    from compute.services.rma import rma_report as build
    from compute.views import rma_report_view

    rt = obj.runtime()
    report = build(rt.store, rt.nodes.get(name))
    if output == "json":
        emit_json(rma_report_view(report))
    else:
        say(report.as_text())


@nodes.command("pair-test")
@click.argument("pool", type=POOL)
@click.option(
    "--node",
    "names",
    type=NODE,
    multiple=True,
    help="Test these nodes (repeatable; default: every in-service node of POOL).",
)
@click.option("--drain", is_flag=True, help="Drain the nodes found slow with every partner.")
@click.option(
    "--bytes", "nbytes", type=click.IntRange(4, None), default=None, help="All-reduce size."
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(1, None),
    default=None,
    help="Seconds a round may take, queueing included (default: pair_test.timeout_seconds).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="What the probe runs on (cpu: gloo, for test clusters without GPUs).",
)
@output_option
@click.pass_obj
def pair_test(
    obj: CliContext,
    pool: str,
    names: tuple[str, ...],
    drain: bool,
    nbytes: int | None,
    timeout_seconds: float | None,
    device: str,
    output: str,
) -> None:
    """NCCL all-reduce between pairs of POOL's nodes, as jobs of its workload manager.

    Every node meets two partners; a node slow with both is the suspect, a slow pair of
    otherwise healthy nodes points at the link between them. Exit 0 when every pair was
    measured and none is slow, 1 otherwise.
    """
    from compute.services.fabric import PairTestOptions
    from compute.views import pair_test_view

    rt = obj.runtime()
    cfg = rt.settings.pair_test
    floor = next(
        (p.pair_test_floor_gbps for p in rt.settings.effective_pools if p.name == pool), None
    )
    run = rt.fabric.pair_test(
        pool,
        PairTestOptions(
            slow_ratio=cfg.slow_ratio,
            floor_gbps=floor,
            nbytes=nbytes or cfg.bytes,
            timeout_seconds=timeout_seconds or cfg.timeout_seconds,
            probe_timeout_seconds=cfg.probe_timeout_seconds,
            port=cfg.port,
            device=device,
        ),
        actor=obj.actor,
        names=names,
        drain=drain,
    )
    report = run.report
    if output == "json":
        emit_json(pair_test_view(run))
    else:
        table(
            f"pair test of {pool}: {len(run.nodes)} nodes, {len(report.pairs)} pairs in "
            f"{run.rounds} round(s); reference {_gbps(report.reference_gbps)}",
            ["pair", "busbw", "of reference", "verdict", "job", "error"],
            [
                (
                    " - ".join(v.nodes),
                    _gbps(v.busbw_gbps),
                    f"{v.ratio:.0%}" if v.ratio is not None else "",
                    "slow" if v.slow else "failed" if v.failed else "ok",
                    v.job,
                    v.error,
                )
                for v in report.pairs
            ],
            styles={3: lambda v: {"slow": "red", "failed": "yellow"}.get(str(v), "green")},
        )
        if not report.judged:
            click.echo(
                "not judged: fewer than three nodes measured and no pair_test_floor_gbps "
                "for the pool"
            )
        for node, evidence in report.suspect_nodes.items():
            say(f"suspect node {node}: {evidence}")
        for a, b in report.suspect_links:
            say(f"suspect link {a} - {b}: slow together, fine with other partners")
        for node in report.inconclusive:
            say(f"inconclusive {node}: in a slow pair, with no other partner to clear it")
        for node in report.untested:
            say(f"untested {node}: none of its pairs produced a figure")
        if run.drain_refused:
            say(f"not drained: {run.drain_refused}")
        for node in run.drained:
            say(f"drained {node}")
        for node, why in run.drain_errors.items():
            say(f"not drained {node}: {why}")
    if not report.healthy:
        raise SystemExit(1)


def _gbps(value: float | None) -> str:
    return f"{value:.2f} GB/s" if value is not None else "-"
