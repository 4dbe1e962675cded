"""The power part of benchmarks/gpu_node_check.py: a real GPU's power readout, and a cap set,
read back and reverted, first through NVML as the node agent does it (health/power.py), then
through computectl's own loop (request_caps -> the node agent's exchange -> revert_caps) on a
throwaway control plane in a temporary directory, when this machine has computectl's
dependencies. Every step restores the limit it found, whatever fails."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from health.power import Action, GpuPower, apply_actions, clamp, exchange, read_dcmi


def cap_target(g: GpuPower, fraction: float) -> float:
    """A limit to try: ``fraction`` of the default (or current) limit, within [min, max]."""
    base = g.default_limit_watts or g.limit_watts or 0.0
    return round(clamp(base * fraction, g.min_limit_watts, g.max_limit_watts), 0)


def nvml_cap(source: Any, index: int, fraction: float) -> dict[str, Any]:
    """Cap GPU ``index`` through the agent's code, read it back, restore it."""
    before = {g.index: g for g in source.read_power()}[index]
    target = cap_target(before, fraction)
    out: dict[str, Any] = {"gpu": index, "before": before.limit_watts, "target": target}
    t0 = time.perf_counter()
    try:
        (applied,) = apply_actions(source, [Action(1, "apply", target, (index,))],
                                   source.read_power())  # fmt: skip
        out["apply"] = applied
        out["apply_seconds"] = round(time.perf_counter() - t0, 4)
        now = {g.index: g for g in source.read_power()}[index]
        out["read_back"] = {"limit": now.limit_watts, "enforced": now.enforced_limit_watts,
                            "draw": now.power_watts}  # fmt: skip
    finally:
        t1 = time.perf_counter()
        restore = Action(2, "revert", restore={index: before.limit_watts})
        (reverted,) = apply_actions(source, [restore], source.read_power())
        out["revert"] = reverted
        out["revert_seconds"] = round(time.perf_counter() - t1, 4)
        out["after_revert"] = {g.index: g for g in source.read_power()}[index].limit_watts
    return out


def computectl_cap(source: Any, index: int, fraction: float) -> dict[str, Any]:
    """The same cap through computectl: recorded by request_caps on a simulated control
    plane's node gpu-001, applied by this machine's agent (this GPU standing in for that
    node's GPU ``index``), read back, reverted by revert_caps and restored by the agent."""
    from compute.services import power_caps
    from compute.services.power_report import PowerReport
    from compute.store import power_caps as kept
    from compute.testing import make_runtime

    before = {g.index: g for g in source.read_power()}[index]
    target = cap_target(before, fraction)
    with tempfile.TemporaryDirectory() as tmp:
        rt = make_runtime(Path(tmp), racks=1, nodes_per_rack=1)
        try:
            rt.sweep()  # the inventory: node gpu-001

            def post(body: dict[str, Any]) -> dict[str, Any]:
                return power_caps.node_exchange(rt, "gpu-001", PowerReport.model_validate(body),
                                                "node:gpu-001 (benchmark)")  # fmt: skip

            (cap,) = power_caps.request_caps(
                rt, ["gpu-001"], target, gpus=[index], actor="benchmark",
                reason="gpu_node_check", source="operator",
            )  # fmt: skip
            exchange(source, post, "ipmitool")
            (applied,) = kept.listed(rt.store, ids=[cap.id])
            power_caps.revert_caps(rt, cap_ids=[cap.id], actor="benchmark", reason="done")
            exchange(source, post, "ipmitool")
            (reverted,) = kept.listed(rt.store, ids=[cap.id])
        finally:
            rt.close()
            now = {g.index: g for g in source.read_power()}[index]
            if now.limit_watts != before.limit_watts and before.limit_watts is not None:
                source.set_limit(index, before.limit_watts)  # whatever happened above
    return {
        "target": target,
        "applied": {"state": applied.state, "before": dict(applied.before),
                    "clamped": dict(applied.clamped), "after": dict(applied.after),
                    "detail": applied.detail},
        "reverted": {"state": reverted.state, "after": dict(reverted.after),
                     "detail": reverted.detail},
    }  # fmt: skip


def power_part(source: Any, cap: bool, fraction: float = 0.8) -> dict[str, Any]:
    t0 = time.perf_counter()
    gpus = source.read_power()
    out: dict[str, Any] = {
        "read_seconds": round(time.perf_counter() - t0, 4),
        "gpus": [g.body() for g in gpus],
    }
    bmc = read_dcmi("ipmitool")
    out["bmc"] = {"watts": bmc.watts, "source": bmc.source, "error": bmc.error}
    for g in gpus:
        print(f"   GPU {g.index}: {g.power_watts:.1f} W, limit {g.limit_watts} W "
              f"(default {g.default_limit_watts}, {g.min_limit_watts}-{g.max_limit_watts})",
              flush=True)  # fmt: skip
    print(f"   BMC: {out['bmc']}", flush=True)
    if cap and gpus:
        out["nvml_cap"] = nvml_cap(source, gpus[0].index, fraction)
        print(f"   NVML cap: {out['nvml_cap']['apply']['detail'] or 'ok'}, read back "
              f"{out['nvml_cap'].get('read_back')}, restored {out['nvml_cap']['after_revert']}",
              flush=True)  # fmt: skip
        try:
            out["computectl_cap"] = computectl_cap(source, gpus[0].index, fraction)
        except ImportError as exc:
            out["computectl_cap"] = {"skipped": f"needs computectl's dependencies: {exc}"}
        print(f"   computectl cap: {out['computectl_cap']}", flush=True)
    return out
