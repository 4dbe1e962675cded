"""Pool-wide consistency: a node whose driver, CUDA or VBIOS differs from its pool's is flagged.

Mixed driver versions in one pool break NCCL jobs in ways that look like hangs, so the
odd one out is reported even when each node passes on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from health.result import CheckResult, Status, Suite, Value

KEYS = ("driver_version", "cuda_version", "vbios_versions")
CHECK = "version_drift"


def drift(values: Mapping[str, Mapping[str, Value]]) -> dict[str, str]:
    """Node → evidence, for nodes whose versions differ from the pool's most common ones."""
    out: dict[str, str] = {}
    if len(values) < 2:
        return out
    for key in KEYS:
        seen = Counter(str(v.get(key, "")) for v in values.values() if v.get(key))
        if len(seen) < 2:
            continue
        (common, count), *_ = seen.most_common()
        if count * 2 <= sum(seen.values()):
            common_note = f"no majority; most common {common} on {count} nodes"
        else:
            common_note = f"{common} on {count} of {sum(seen.values())} nodes"
        for node, v in values.items():
            mine = str(v.get(key, ""))
            if mine and mine != common:
                label = key.replace("_", " ")
                out[node] = "; ".join(
                    filter(None, [out.get(node), f"{label} {mine} ({common_note})"])
                )
    return out


def drift_results(
    pool_values: Mapping[str, Mapping[str, Value]],
    at: datetime,
    flagged_before: set[str] | None = None,
) -> list[CheckResult]:
    """A warning for each drifting node, and a pass for each that drifted before and no
    longer does (results only where something changes or persists: 10,000 quiet nodes
    need no result every sweep)."""
    flagged = drift(pool_values)
    before = flagged_before or set()
    return [
        CheckResult(
            node=node,
            check=CHECK,
            version="1",
            status=Status.WARN if node in flagged else Status.PASS,
            at=at,
            suite=Suite.PASSIVE,
            evidence=flagged.get(node, ""),
            values={"flagged": node in flagged},
        )
        for node in sorted(pool_values)
        if node in flagged or node in before
    ]
