"""`python -m health check`: the node check on a node that has only the health package.

Same checks, formats and exit codes as `computectl node check` (docs/node-check.md),
reading this node's GPUs through NVML. Slurm self-drain needs the full install.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from health import node_check as nc
from health.floors import load_floors
from health.probe import ActiveProbe
from health.thresholds import Thresholds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m health")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check this node's GPUs")
    c.add_argument(
        "--node", default=os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    )
    c.add_argument("--suite", choices=nc.SUITES, default="passive")
    c.add_argument("--format", choices=("text", "json", "prom"), default="text")
    c.add_argument("--textfile", type=Path)
    c.add_argument("--report")
    c.add_argument("--token", default=os.environ.get("COMPUTECTL_SERVER__API_TOKEN"))
    c.add_argument("--expect-gpus", type=int)
    c.add_argument(
        "--state-file",
        type=Path,
        default=Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser()
        / "computectl"
        / "node-check.json",
    )
    c.add_argument("--allow-busy", action="store_true")
    a = p.parse_args(argv)

    from health.nvml import NvmlTelemetry

    telemetry = NvmlTelemetry()
    expectation = None
    if a.report and a.expect_gpus is None:
        expectation = nc.fetch_expectation(a.report, a.node)
    if expectation is None:
        expectation = nc.local_expectation(telemetry, a.node, a.expect_gpus)

    def probe() -> ActiveProbe:
        from health.burnin.torch_probe import TorchProbe

        return TorchProbe()

    state = nc.NodeState.load(a.state_file)
    try:
        results, duration = nc.timed(
            lambda: nc.check_node(
                a.node,
                a.suite,
                telemetry,
                expectation,
                Thresholds(),
                state,
                probe,
                load_floors().get(expectation.gpu_model),
            )
        )
    except (nc.NodeCheckError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return nc.EXIT_USAGE
    state.save(a.state_file, results)
    out = {
        "json": lambda: nc.format_json(a.node, results, duration),
        "prom": lambda: nc.format_prom(a.node, results, duration).rstrip("\n"),
        "text": lambda: nc.format_text(results),
    }[a.format]()
    print(out)
    if a.textfile:
        nc.atomic_write(a.textfile, nc.format_prom(a.node, results, duration))
    code = nc.exit_code(results)
    if a.report:
        try:
            nc.report(a.report, a.node, results, token=a.token)
        except nc.ReportError as exc:
            print(f"error: report failed: {exc}", file=sys.stderr)
            return code or nc.EXIT_REPORT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
