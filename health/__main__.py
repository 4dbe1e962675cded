"""`python -m health check`: the node check on a node that has only the health package.

The same entry as `computectl node check` (`health.node_check.run`: checks, formats, exit
codes, node name and state file defaults; docs/node-check.md), reading this node's GPUs
through NVML with the default thresholds (it has no configuration). Slurm self-drain needs
the full install. The report's credential is the node's own (`health.node_token`:
--token-file, $COMPUTECTL_NODE_TOKEN, the pod's projected token, /etc/computectl/node-token).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from health import node_check as nc
from health.thresholds import Thresholds


def main(argv: list[str] | None = None) -> int:
    # No abbreviations: a `--token SECRET` would be taken for --token-file.
    p = argparse.ArgumentParser(prog="python -m health", allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check this node's GPUs", allow_abbrev=False)
    c.add_argument("--node", default=None)
    c.add_argument("--suite", choices=nc.SUITES, default="passive")
    c.add_argument("--format", choices=("text", "json", "prom"), default="text")
    c.add_argument("--textfile", type=Path)
    c.add_argument("--report")
    # No --token: a credential on the command line is in every user's `ps`.
    c.add_argument("--token-file", type=Path)
    c.add_argument("--expect-gpus", type=int, choices=range(1, 65), metavar="1-64")
    c.add_argument("--state-file", type=Path)
    c.add_argument("--allow-busy", action="store_true")
    # Default: COMPUTECTL_NODE_CHECK__DCGM_LEVEL, else 2 (health/node_check.py).
    c.add_argument("--dcgm-level", type=int, choices=range(5), metavar="0-4")
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
        token_file=a.token_file,
        expect_gpus=a.expect_gpus,
        allow_busy=a.allow_busy,
        dcgm_level=a.dcgm_level,
    )
    return nc.run(request, NvmlTelemetry(), Thresholds())


if __name__ == "__main__":
    sys.exit(main())
