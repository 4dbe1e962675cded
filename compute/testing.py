"""Test helpers, shipped as API: build a wired control plane on a simulated fleet in a directory.

rt = make_runtime(tmp_path, racks=2, fault_rate_per_node_hour=0)
rt.datacenter.inject("gpu-003", "xid79")
rt.sweep()
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compute.config import Settings, load_settings
from compute.runtime import Runtime
from health.result import CheckResult, Status, Suite

# A fixed start keeps simulated runs identical from one test run to the next.
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def make_settings(
    data_dir: Path, config: Mapping[str, Any] | None = None, **simulation: Any
) -> Settings:
    over: dict[str, Any] = {"data_dir": str(data_dir)}
    for k, v in (config or {}).items():
        over[k] = v
    sim = {"fault_rate_per_node_hour": 0.0, "technician_repair_hours": 0.0, **simulation}
    over["simulation"] = {**over.get("simulation", {}), **sim}
    return load_settings(None, env={}, overrides=over)


def make_runtime(
    data_dir: Path, config: Mapping[str, Any] | None = None, persist: bool = True, **simulation: Any
) -> Runtime:
    """A runtime on a simulated datacenter whose clock starts at EPOCH."""
    from compute.simulation.datacenter import SimulatedDatacenter

    settings = make_settings(data_dir, config, **simulation)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    dc = SimulatedDatacenter(
        settings.simulation,
        settings.effective_pools,
        settings.data_dir / "simulation" / "state.json" if persist else None,
        start=EPOCH.timestamp(),
    )
    return Runtime.build(settings, datacenter=dc)


def result(
    node: str,
    check: str = "gpu_count",
    status: str = "fail",
    *,
    fatal: bool = False,
    at: datetime | None = None,
    evidence: str = "test",
    suite: str = "passive",
    values: Mapping[str, Any] | None = None,
) -> CheckResult:
    return CheckResult(
        node=node,
        check=check,
        version="1",
        status=Status(status),
        at=at or EPOCH,
        suite=Suite(suite),
        fatal=fatal,
        evidence=evidence if status != "pass" else "",
        values=dict(values or {}),
    )
