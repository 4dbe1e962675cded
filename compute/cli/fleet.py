"""The fleet-wide commands: config, sweep, events and the simulated datacenter.

What a command needs beyond click is imported when it runs (`computectl --help` loads none).
"""

from __future__ import annotations

import click

from compute.cli.context import CliContext
from compute.cli.output import (
    emit_json,
    error_line,
    output_option,
    say,
    stamp,
    table,
)
from compute.cli.params import NODE, SHORT_TEXT
from compute.errors import InvalidInput, NotFoundError, PartialError
from health.inputs import MAX_GPU_INDEX


@click.group()
def config() -> None:
    """Configuration."""


@config.command("show")
@output_option
@click.pass_obj
def config_show(obj: CliContext, output: str) -> None:
    """Print the effective configuration (file, environment and defaults merged)."""
    from compute.config import settings_as_dict

    data = settings_as_dict(obj.settings())
    if output == "json":
        emit_json(data)
        return
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += [(f"{key}.{k}", v) for k, v in value.items()]
        elif key == "pools":
            rows += [
                (f"pools[{p['name']}]", ", ".join(f"{k}={v}" for k, v in p.items() if k != "name"))
                for p in value
            ]
        else:
            rows.append((key, value))
    table(None, ["setting", "value"], rows)


@config.command("doc")
def config_doc() -> None:
    """Print the reference of every setting (Markdown; docs/configuration.md)."""
    from compute.config_doc import render

    click.echo(render())


@click.command()
@output_option
@click.pass_obj
def sweep(obj: CliContext, output: str) -> None:
    """Run one sweep now: sync, check, decide, act.

    Only while holding the control plane's lease: beside a running `serve` (or another
    sweep) it does nothing and exits 5.
    """
    report = obj.client().sweep()
    errors = report["errors"]
    if output == "json":
        emit_json(report)
        if errors:
            raise PartialError(f"the sweep finished with {len(errors)} error(s)")
        return
    # The API's view has no failed count yet (it is in the report the data directory gives).
    failed = f" ({report['failed_results']} failed)" if "failed_results" in report else ""
    say(
        f"swept {report['nodes']} nodes, {report['results']} results{failed} "
        f"in {report['duration_seconds']:.2f}s"
    )
    if report["actions"]:
        table(
            "actions",
            ["node", "action", "reason"],
            [(a["node"], a["action"], a["reason"]) for a in report["actions"]],
        )
    if report["deferred"]:
        table(
            "waiting for drain budget",
            ["node", "reason"],
            [(d["node"], d["reason"]) for d in report["deferred"]],
        )
    for err in errors:
        error_line(err)
    if errors:
        raise PartialError(f"the sweep finished with {len(errors)} error(s); the rest was done")


@click.command()
@click.option("--node", type=NODE, help="Only this node.")
@click.option("--kind", type=SHORT_TEXT, multiple=True, help="Only these kinds (repeatable).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@output_option
@click.pass_obj
def events(
    obj: CliContext, node: str | None, kind: tuple[str, ...], limit: int, output: str
) -> None:
    """Drain, resume and lifecycle events, newest first."""
    evs = obj.client().events(node, kind, limit)
    if output == "json":
        emit_json(evs)
        return
    table(
        None,
        ["time", "node", "pool", "event", "reason", "actor"],
        [(stamp(e["at"]), e["node"], e["pool"], e["kind"], e["reason"], e["actor"]) for e in evs],
    )


@click.group()
def sim() -> None:
    """The simulated datacenter (embedded default)."""


@sim.command("inject")
@click.argument("node", type=NODE)
@click.argument("kind", type=SHORT_TEXT)
@click.option("--gpu", type=click.IntRange(0, MAX_GPU_INDEX), default=0, show_default=True)
@click.pass_obj
def sim_inject(obj: CliContext, node: str, kind: str, gpu: int) -> None:
    """Inject fault KIND (xid79, xid48, nvlink_down, ...) on a simulated NODE."""
    from health.simulated import FaultKind

    rt = obj.runtime()
    if rt.datacenter is None:
        raise InvalidInput("no simulated datacenter is configured")
    try:
        FaultKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown fault {kind!r}; one of {', '.join(k.value for k in FaultKind)}"
        ) from None
    # Every simulated node has the configured number of GPUs.
    count = rt.settings.simulation.gpus_per_node
    if gpu >= count:
        raise InvalidInput(f"simulated nodes have {count} GPUs (0-{count - 1}), not GPU {gpu}")
    try:
        rt.datacenter.inject(node, kind, gpu)
    except KeyError:
        raise NotFoundError(f"unknown simulated node {node!r}") from None
    click.echo(f"injected {kind} on {node} GPU {gpu}")
