"""The node check's output formats: text for people, JSON, and Prometheus' text format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from health.result import CheckResult, Status

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_FATAL = 3


def exit_code(results: Sequence[CheckResult]) -> int:
    if any(r.fatal for r in results):
        return EXIT_FATAL
    if any(r.status is Status.FAIL for r in results):
        return EXIT_FAILED
    return EXIT_OK


def format_text(results: Sequence[CheckResult]) -> str:
    lines = []
    for r in results:
        mark = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}[r.status.value]
        fatal = " (fatal)" if r.fatal else ""
        lines.append(f"{mark} {r.check:<16} {r.suite.value:<8}{fatal} {r.evidence}".rstrip())
    return "\n".join(lines)


def format_json(node: str, results: Sequence[CheckResult], duration: float) -> str:
    return json.dumps(
        {
            "node": node,
            "duration_seconds": round(duration, 4),
            "exit_code": exit_code(results),
            "results": [r.to_dict() for r in results],
        },
        indent=2,
    )


_STATUS_VALUE = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_prom(node: str, results: Sequence[CheckResult], duration: float) -> str:
    """Prometheus text format for node_exporter's textfile collector."""
    out = [
        "# HELP computectl_node_check_status Latest result per check: 0 pass, 1 warn, 2 fail.",
        "# TYPE computectl_node_check_status gauge",
    ]
    for r in results:
        out.append(
            f'computectl_node_check_status{{node="{_label(node)}",check="{_label(r.check)}",'
            f'suite="{r.suite.value}"}} {_STATUS_VALUE[r.status]}'
        )
    out += [
        "# HELP computectl_node_check_fatal Whether the check failed fatally (1) or not (0).",
        "# TYPE computectl_node_check_fatal gauge",
    ]
    for r in results:
        out.append(
            f'computectl_node_check_fatal{{node="{_label(node)}",check="{_label(r.check)}",'
            f'suite="{r.suite.value}"}} {int(r.fatal)}'
        )
    at = max((r.at for r in results), default=datetime.now(UTC))
    out += [
        "# HELP computectl_node_check_timestamp_seconds When the node check last ran.",
        "# TYPE computectl_node_check_timestamp_seconds gauge",
        f'computectl_node_check_timestamp_seconds{{node="{_label(node)}"}} {at.timestamp():.3f}',
        "# HELP computectl_node_check_duration_seconds How long the node check took.",
        "# TYPE computectl_node_check_duration_seconds gauge",
        f'computectl_node_check_duration_seconds{{node="{_label(node)}"}} {duration:.4f}',
    ]
    return "\n".join(out) + "\n"
