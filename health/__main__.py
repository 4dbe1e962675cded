"""`python -m health check`: the node check on a node that has only the health package.

The same entry as `computectl node check` (`health.node_check.run`: checks, formats, exit
codes, node name and state file defaults; docs/node-check.md), reading this node's GPUs
through NVML with the default thresholds (it has no configuration). Slurm self-drain needs
the full install.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from health import node_check as nc
from health.thresholds import Thresholds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m health")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check this node's GPUs")
    c.add_argument("--node", default=None)
    c.add_argument("--suite", choices=nc.SUITES, default="passive")
    c.add_argument("--format", choices=("text", "json", "prom"), default="text")
    c.add_argument("--textfile", type=Path)
    c.add_argument("--report")
    c.add_argument("--token", default=os.environ.get("COMPUTECTL_SERVER__API_TOKEN"))
    c.add_argument("--expect-gpus", type=int, choices=range(1, 65), metavar="1-64")
    c.add_argument("--state-file", type=Path)
    c.add_argument("--allow-busy", action="store_true")
    a = p.parse_args(argv)

    from health.nvml import NvmlTelemetry

    node = a.node or nc.default_node()
    request = nc.CheckRequest(
        node=node,
        state_file=a.state_file or nc.default_state_file(None, node),
        suite=a.suite,
        fmt=a.format,
        textfile=a.textfile,
        report_url=a.report,
        token=a.token,
        expect_gpus=a.expect_gpus,
        allow_busy=a.allow_busy,
    )
    return nc.run(request, NvmlTelemetry(), Thresholds())


if __name__ == "__main__":
    sys.exit(main())
