"""`computectl`: the operators' command line. User errors end in one red line and exit code 2."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from compute.cli import node as node_cmd
from compute.cli import nodes as nodes_cmd
from compute.cli import server as server_cmd
from compute.cli import tenants as tenants_cmd
from compute.cli.context import CliContext
from compute.cli.output import emit_json, error_line, output_option, state_style, table
from compute.cli.params import NODE, SHORT_TEXT
from compute.config import settings_as_dict
from compute.errors import ComputeError, PartialError
from health.inputs import MAX_GPU_INDEX


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COMPUTECTL_CONFIG",
    help="Configuration file (TOML). Env: COMPUTECTL_CONFIG.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (overrides the setting data_dir / COMPUTECTL_DATA_DIR).",
)
@click.version_option("0.1.0", prog_name="computectl")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, data_dir: Path | None) -> None:
    """computectl: the control plane of a managed GPU cloud."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    ctx.obj = CliContext(config_path=config_path, overrides=overrides, actor=f"operator:{_user()}")
    ctx.call_on_close(ctx.obj.close)


def _user() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@cli.group()
def config() -> None:
    """Configuration."""


@config.command("show")
@output_option
@click.pass_obj
def config_show(obj: CliContext, output: str) -> None:
    """Print the effective configuration (file, environment and defaults merged)."""
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


@cli.command()
@output_option
@click.pass_obj
def sweep(obj: CliContext, output: str) -> None:
    """Run one sweep now: sync, check, decide, act."""
    report = obj.runtime().sweep()
    if output == "json":
        emit_json(report.__dict__)
        if report.errors:
            raise PartialError(f"the sweep finished with {len(report.errors)} error(s)")
        return
    click.echo(
        f"swept {report.nodes} nodes, {report.results} results "
        f"({report.failed_results} failed) in {report.duration_seconds:.2f}s"
    )
    if report.actions:
        table(
            "actions",
            ["node", "action", "reason"],
            [(a["node"], a["action"], a["reason"]) for a in report.actions],
        )
    if report.deferred:
        table(
            "waiting for drain budget",
            ["node", "reason"],
            [(d["node"], d["reason"]) for d in report.deferred],
        )
    for err in report.errors:
        error_line(err)
    if report.errors:
        raise PartialError(
            f"the sweep finished with {len(report.errors)} error(s); the rest was done"
        )


@cli.command()
@click.option("--node", type=NODE, help="Only this node.")
@click.option("--kind", type=SHORT_TEXT, multiple=True, help="Only these kinds (repeatable).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@output_option
@click.pass_obj
def events(
    obj: CliContext, node: str | None, kind: tuple[str, ...], limit: int, output: str
) -> None:
    """Drain, resume and lifecycle events, newest first."""
    from compute.api.views import event_as_dict

    rt = obj.runtime()
    if node is not None:
        rt.nodes.get(node)
    evs = rt.store.events(node=node, kinds=list(kind) or None, limit=limit)
    if output == "json":
        emit_json([event_as_dict(e) for e in evs])
        return
    table(
        None,
        ["time", "node", "pool", "event", "reason", "actor"],
        [
            (e.at.strftime("%Y-%m-%d %H:%M:%S"), e.node, e.pool, e.kind, e.reason, e.actor)
            for e in evs
        ],
    )


@cli.command()
@output_option
@click.pass_obj
def capacity(obj: CliContext, output: str) -> None:
    """GPUs by state x pool x model (summing to the installed count), and by tenant."""
    from compute.api.views import capacity_as_dict
    from compute.services.capacity import capacity as compute_capacity

    rt = obj.runtime()
    cap = compute_capacity(rt.store.nodes(), rt.store.allocations())
    if output == "json":
        emit_json(capacity_as_dict(cap))
        return
    rows: list[tuple[Any, ...]] = [(r.pool, r.gpu_model, r.state, r.gpus) for r in cap.rows]
    rows.append(("total", "", "", cap.total))
    table("GPUs by state", ["pool", "model", "state", "gpus"], rows, styles={2: state_style})
    if cap.tenants:
        table(
            "GPUs allocated by tenant",
            ["tenant", "pool", "model", "gpus"],
            [(t.tenant, t.pool, t.gpu_model, t.gpus) for t in cap.tenants],
        )


@cli.group()
def sim() -> None:
    """The simulated datacenter (embedded default)."""


@sim.command("inject")
@click.argument("node", type=NODE)
@click.argument("kind", type=SHORT_TEXT)
@click.option("--gpu", type=click.IntRange(0, MAX_GPU_INDEX), default=0, show_default=True)
@click.pass_obj
def sim_inject(obj: CliContext, node: str, kind: str, gpu: int) -> None:
    """Inject fault KIND (xid79, xid48, nvlink_down, ...) on a simulated NODE."""
    from compute.errors import InvalidInput, NotFoundError
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


cli.add_command(nodes_cmd.nodes)
cli.add_command(node_cmd.node)
cli.add_command(tenants_cmd.tenants)
cli.add_command(server_cmd.serve)
cli.add_command(server_cmd.demo)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="computectl", standalone_mode=False)
    except ComputeError as exc:
        error_line(str(exc))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        error_line("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        # One line, like every other refusal (click's own adds usage lines).
        error_line(exc.format_message())
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
