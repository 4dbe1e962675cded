"""`computectl node check`: the node-side check, from cron, Slurm or a DaemonSet."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from compute.cli.context import CliContext
from compute.cli.output import error_line
from compute.errors import InvalidInput
from health import node_check as nc
from health.probe import ActiveProbe
from health.result import CheckResult
from health.telemetry import NodeExpectation, TelemetrySource


@click.group()
def node() -> None:
    """Commands that run on a GPU node."""


@node.command("check")
@click.option(
    "--node",
    "name",
    default=None,
    help="Node name (default: $SLURMD_NODENAME, $NODE_NAME or the short host name).",
)
@click.option(
    "--suite",
    type=click.Choice(nc.SUITES),
    default="passive",
    show_default=True,
    help="passive: seconds, safe under load; burnin: minutes, idle nodes only.",
)
@click.option(
    "--source",
    type=click.Choice(["nvml", "simulated"]),
    default="nvml",
    show_default=True,
    help="Where telemetry comes from: this node's GPUs through "
    "NVML, or the simulated datacenter (embedded default).",
)
@click.option(
    "--expect-gpus",
    type=click.IntRange(1, 64),
    default=None,
    help="GPUs the node must have (default: the control plane's inventory, else what is visible).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "prom"]),
    default="text",
    show_default=True,
    help="What to print on stdout.",
)
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the Prometheus text format here (node_exporter's textfile "
    "collector directory), atomically.",
)
@click.option(
    "--report",
    "report_url",
    default=None,
    help="Control plane URL to post the results to (e.g. http://cp:8080).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="This node's own credential for --report (default: $COMPUTECTL_NODE_TOKEN, else "
    "the pod's projected token /var/run/secrets/computectl/token, else "
    "/etc/computectl/node-token; see docs/deploy-node-identity.md).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the check keeps its cursor between runs (default: in data_dir).",
)
@click.option("--allow-busy", is_flag=True, help="Run burn-in even though the GPUs are busy.")
@click.option(
    "--dcgm-level",
    type=click.IntRange(0, 4),
    default=None,
    help="Burn-in: dcgmi diag -r LEVEL where DCGM is installed; 0 off "
    "(default: [node_check] dcgm_level).",
)
@click.option(
    "--slurm",
    "slurm_mode",
    is_flag=True,
    help="Act as Slurm's HealthCheckProgram: drain this node on a fatal failure, "
    "resume it only if the node check drained it.",
)
@click.pass_obj
def check(
    obj: CliContext,
    name: str | None,
    suite: str,
    source: str,
    expect_gpus: int | None,
    fmt: str,
    textfile: Path | None,
    report_url: str | None,
    token_file: Path | None,
    state_file: Path | None,
    allow_busy: bool,
    dcgm_level: int | None,
    slurm_mode: bool,
) -> None:
    """Check this node's GPUs; exit 0 ok, 1 failed, 3 fatal, 2 usage, 4 report failed."""
    node_name = name or nc.default_node()
    settings = obj.settings()
    telemetry, probe, expectation = _source(obj, source, node_name, expect_gpus)
    request = nc.CheckRequest(
        node=node_name,
        state_file=state_file or nc.default_state_file(settings.data_dir, node_name),
        suite=suite,
        fmt=fmt,
        textfile=textfile,
        report_url=report_url,
        token_file=token_file,
        expect_gpus=expect_gpus,
        allow_busy=allow_busy,
        ipmitool=settings.power.ipmitool_path if settings.power.ipmitool else None,
        dcgm_level=settings.node_check.dcgm_level if dcgm_level is None else dcgm_level,
    )
    act = None
    if slurm_mode:
        from compute.cli.slurm_health import act_on_results

        def act(results: list[CheckResult]) -> str:
            return act_on_results(settings, node_name, results)

    code = nc.run(
        request,
        telemetry,
        settings.checks.thresholds(),
        probe=probe,
        expectation=expectation,
        act=act,
        out=click.echo,
        err=error_line,
    )
    sys.exit(code)


@node.command("pair-probe")
@click.option(
    "--peers",
    required=True,
    help="The pair, NAME@ADDRESS,NAME@ADDRESS; the first node hosts the rendezvous.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), required=True, help="Rendezvous port on the first."
)
@click.option(
    "--node",
    "name",
    default=None,
    help="This node's name in --peers (default: $SLURMD_NODENAME, $NODE_NAME or the host name).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="auto: every local GPU through NCCL where CUDA is there, else the CPU through gloo.",
)
@click.option(
    "--bytes",
    "nbytes",
    type=click.IntRange(4, None),
    default=None,
    help="All-reduce size (default 1 GiB on GPUs, 16 MiB on the CPU).",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(1, None),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the peer and the collective.",
)
@click.option(
    "--result-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the result line here (a Kubernetes pod's /dev/termination-log).",
)
def pair_probe(
    peers: str,
    port: int,
    name: str | None,
    device: str,
    nbytes: int | None,
    timeout_seconds: float,
    result_file: Path | None,
) -> None:
    """One side of the multi-node pair test (started by `computectl nodes pair-test`).

    The first node prints one JSON result line; exit 0 done, 1 failed, 2 usage.
    """
    from health.burnin.pair import PairProbe, parse_peers, result_line
    from health.probe import ProbeError

    try:
        probe = PairProbe(
            parse_peers(peers),
            name or nc.default_node(),
            port,
            device=None if device == "auto" else device,
            nbytes=nbytes,
            timeout_seconds=timeout_seconds,
        )
        probe.rank()
    except ProbeError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        result = probe.run()
    except ProbeError as exc:
        error_line(f"pair test failed: {exc}")
        sys.exit(1)
    if result is not None:
        line = result_line(result)
        click.echo(line)
        if result_file is not None:
            try:
                result_file.write_text(line + "\n")
            except OSError as exc:
                error_line(f"cannot write the result file: {exc}")
                sys.exit(1)


def _source(
    obj: CliContext, source: str, node_name: str, expect_gpus: int | None
) -> tuple[TelemetrySource, Callable[[], ActiveProbe] | None, NodeExpectation | None]:
    if source == "simulated":
        rt = obj.runtime()
        dc = rt.datacenter
        if dc is None:
            raise InvalidInput(
                "--source simulated needs the simulated datacenter (simulation.enabled)"
            )
        with dc.session():
            if node_name not in dc.fleet.nodes:
                raise InvalidInput(f"unknown simulated node {node_name!r}")
            sim_node = dc.fleet.nodes[node_name]
            model, count = sim_node.model, len(sim_node.gpus)
            uuids = tuple(g.uuid for g in sim_node.gpus)
        from health.simulated import SimulatedProbe, SimulatedTelemetry

        def sim_probe() -> ActiveProbe:
            return SimulatedProbe(dc.fleet_access, node_name)

        return (
            SimulatedTelemetry(dc.fleet_access),
            sim_probe,
            NodeExpectation(
                gpu_count=expect_gpus or count,
                gpu_model=model,
                gpu_uuids=uuids,
                nvlinks_per_gpu=18,
                pcie_width=16,
            ),
        )
    from health.nvml import NvmlTelemetry

    return NvmlTelemetry(), nc.torch_probe, None
