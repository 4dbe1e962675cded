"""`computectl nodes ...`"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from compute.cli.context import CliContext
from compute.cli.output import (
    emit_json,
    error_line,
    output_option,
    say,
    stamp,
    state_style,
    table,
)
from compute.cli.params import NODE, POOL, REASON
from compute.cli.reports import rma_text
from compute.errors import PartialError
from health.inputs import MAX_REASON
from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.client.protocol import View


@click.group()
def nodes() -> None:
    """GPU nodes: list, show, drain, resume, retire, clear-lemon, pair-test."""


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
    found = _read_fast(obj, pool, state)
    if found is None:
        found = obj.client().nodes(pool, state)
    if output == "json":
        emit_json(found)
        return
    table(
        None,
        ["node", "pool", "rack", "gpus", "state", "jobs", "reason"],
        [
            (
                n["name"],
                n["pool"],
                n["rack"],
                f"{n['gpus_allocated']}/{n['gpu_count']} {n['gpu_model']}",
                n["state"] + (" (lemon)" if n.get("lemon") else ""),
                n["jobs_running"],
                n["drain_reason"]
                or (f"waiting: {n['deferred_reason']}" if n["deferred_reason"] else ""),
            )
            for n in found
        ],
        styles={4: state_style},
    )


def _read_fast(obj: CliContext, pool: str | None, state: str | None) -> list[View] | None:
    """The nodes straight from the data directory's SQLite file, where that answers what
    the client would (compute/client/sqlite_reads.py); None: ask the client."""
    if obj.target() is not None:
        return None
    from compute.client import sqlite_reads

    db = sqlite_reads.store_file(obj.local.config_path, obj.local.overrides, os.environ)
    return None if db is None else sqlite_reads.nodes(db, pool, state)


RESULT_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


@nodes.command("show")
@click.argument("name", type=NODE)
@output_option
@click.pass_obj
def show(obj: CliContext, name: str, output: str) -> None:
    """One node: state, GPUs, latest check results, recent events."""
    n = obj.client().node(name)
    if output == "json":
        emit_json(n)
        return
    rows = [
        ("node", n["name"]),
        ("pool", n["pool"]),
        ("rack", n["rack"]),
        ("gpus", f"{n['gpu_count']} x {n['gpu_model']} ({n['gpus_allocated']} allocated)"),
        ("state", f"{n['state']} since {stamp(n['state_since'])}"),
        ("jobs", n["jobs_running"]),
        ("backend state", n["backend_state"]),
    ]
    if n["drain_reason"]:
        rows.append(
            (
                "drain",
                f"{n['drain_reason']} (owner: {n['drain_owner'] or '?'}, "
                f"by {n['drain_actor'] or '?'})",
            )
        )
    if n["deferred_reason"]:
        rows.append(("waiting", n["deferred_reason"]))
    f = n["finding"]
    if f:
        fatal = " (fatal)" if f.get("fatal") else ""
        rows.append(("finding", f"{f.get('check')}{fatal}: {f.get('evidence')}"))
    if n["burn_in_failures"]:
        rows.append(("burn-in failures", n["burn_in_failures"]))
    if n.get("lemon"):
        rows.append(("lemon", n["lemon"]["reason"]))
    table(None, ["", ""], rows)
    if n["results"]:
        table(
            "latest results",
            ["check", "suite", "status", "at", "evidence"],
            [
                (r["check"], r["suite"], r["status"], stamp(r["at"], "%H:%M:%S"), r["evidence"])
                for r in n["results"]
            ],
            styles={2: lambda v: RESULT_STYLE.get(str(v), "")},
        )
    if n["gpus"]:
        table(
            "GPUs",
            ["index", "uuid", "serial", "model"],
            [(g["index"], g["uuid"], g["serial"], g["model"]) for g in n["gpus"]],
        )
    if n["events"]:
        table(
            "events",
            ["time", "event", "reason", "actor"],
            [(stamp(e["at"]), e["kind"], e["reason"], e["actor"]) for e in n["events"]],
        )


def _targets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """A name is checked as NODE checks one; a hostlist when it is expanded."""
    return tuple(v if "[" in v or "," in v else NODE.convert(v, param, ctx) for v in values)


def _ended(answer: dict[str, Any], verb: str) -> None:
    """Each refusal on its line, then exit 4 (some were done). With none done, the client
    raised the refusal itself (2 or 3)."""
    refused = answer["refused"]
    if not refused:
        return
    for r in refused:
        error_line(r["detail"])
    total = len(answer["nodes"]) + len(refused)
    names = ", ".join(r["node"] for r in refused)
    raise PartialError(f"{len(refused)} of {total} nodes not {verb}: {names}")


def _one_or_all(answer: dict[str, Any]) -> None:
    views = answer["nodes"]
    if views:
        emit_json(views[0] if len(views) + len(answer["refused"]) == 1 else views)


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
    answer = obj.client().drain(names, reason, now_mode)
    if output == "json":
        _one_or_all(answer)
    else:
        for node in answer["nodes"]:
            say(f"{node['name']}: {node['state']} ({node['drain_reason']})")
            for item in node["left_running"]:
                say(f"  left running (a disruption budget protects it): {item}")
    _ended(answer, "drained")


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
    answer = obj.client().resume(names, force, skip_burn_in)
    if output == "json":
        _one_or_all(answer)
    else:
        for node in answer["nodes"]:
            say(f"{node['name']}: {node['state']}")
    _ended(answer, "resumed")


@nodes.command()
@click.argument("name", type=NODE)
@click.pass_obj
def retire(obj: CliContext, name: str) -> None:
    """Retire NAME for good (it must be drained or in repair)."""
    node = obj.client().retire(name)
    say(f"{node['name']}: {node['state']}")


@nodes.command("clear-lemon")
@click.argument("name", type=NODE)
@click.option(
    "--reason",
    type=REASON,
    required=True,
    help=f"Why, e.g. the board replaced (recorded; {MAX_REASON} characters at most).",
)
@output_option
@click.pass_obj
def clear_lemon(obj: CliContext, name: str, reason: str, output: str) -> None:
    """Clear NAME's lemon mark: only repeats after now count toward a new one (docs/lemons.md)."""
    done = obj.client().clear_lemon(name, reason)
    if output == "json":
        emit_json(done)
    else:
        say(f"{done['node']}: lemon mark of {stamp(done['mark']['at'])} UTC cleared")


@nodes.command("rma-report")
@click.argument("name", type=NODE)
@output_option
@click.pass_obj
def rma_report(obj: CliContext, name: str, output: str) -> None:
    """The evidence an RMA ticket needs: serials, UUIDs, XIDs, burn-in figures, history."""
    report = obj.client().rma_report(name)
    if output == "json":
        emit_json(report)
    else:
        say(rma_text(report))


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
        for c in run.rechecks:
            say(f"re-paired {c.node} with {c.partner or 'no known-good node'}: {c.outcome.value}")
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
