"""Grace Blackwell's NVLink domain: read through NVML's fabric info (a fake pynvml module
with the real structures), judged by the nvlink check, kept in the node's record, and a
domain's fault told apart from single nodes' (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pynvml
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.domain import Node
from compute.services.nvlink_domains import domain_faults, plan, suspects
from compute.store.nvlink_domains import Member
from health.checks.nvlink import NvlinkCheck
from health.floors import load_floors
from health.models import NVLINKS_PER_GPU, expected_nvlinks
from health.nvlink_domain import (
    FabricSnapshot,
    believable_domain,
    fabric_of,
    gpu_fabric,
    recorded_domain,
    uuid_text,
)
from health.policy import Lifecycle, NodeHealth, PolicyConfig
from health.policy.model import NodeView
from health.result import Status
from health.runner import run_passive
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds
from tests.unit.test_nvml_source import (
    UUIDS,
    FakeGpu,
    FakeNvml,
    NVMLError,
    NVMLError_NotSupported,
    source,
)

CLUSTER = bytes(range(0x10, 0x20))
CLUSTER_TEXT = "10111213-1415-1617-1819-1a1b1c1d1e1f"
DOMAIN = f"{CLUSTER_TEXT}/7"


@dataclass
class Fabric:
    state: int = pynvml.NVML_GPU_FABRIC_STATE_COMPLETED
    status: int = 0
    clique: int = 7
    health_mask: int = 0


class FabricNvml(FakeNvml):
    """A GB200 compute tray: the fake with nvmlDeviceGetGpuFabricInfo(V), filling
    nvidia-ml-py's own structures through the pointer it is given, as NVML does."""

    c_nvmlGpuFabricInfo_t = pynvml.c_nvmlGpuFabricInfo_t
    c_nvmlGpuFabricInfoV_t = pynvml.c_nvmlGpuFabricInfoV_t

    def __init__(self, gpus: list[FakeGpu], fabric: dict[int, Fabric], versioned: bool = True):
        super().__init__(gpus)
        self.fabric = fabric
        self.versioned = versioned
        self.calls: list[str] = []

    def _fill(self, g: FakeGpu, ref: Any, versioned: bool) -> None:
        info = ref._obj
        f = self.fabric.get(g.index)
        if f is None:
            raise NVMLError_NotSupported()
        for i, b in enumerate(CLUSTER):
            info.clusterUuid[i] = b
        info.status, info.cliqueId, info.state = f.status, f.clique, f.state
        if versioned:
            assert info.version == pynvml.nvmlGpuFabricInfo_v2
            info.healthMask = f.health_mask

    def nvmlDeviceGetGpuFabricInfoV(self, g: FakeGpu, ref: Any) -> int:
        self.calls.append("V")
        if not self.versioned:
            raise NVMLError(13)  # NVML_ERROR_FUNCTION_NOT_FOUND: a driver before it
        self._fill(g, ref, versioned=True)
        return 0

    def nvmlDeviceGetGpuFabricInfo(self, g: FakeGpu, ref: Any) -> int:
        self.calls.append("v1")
        self._fill(g, ref, versioned=False)
        return 0


def gb200(n: int = 4) -> list[FakeGpu]:
    return [FakeGpu(i, name="NVIDIA GB200") for i in range(n)]


EXPECT = NodeExpectation(
    gpu_count=4, gpu_model="GB200", gpu_uuids=UUIDS[:4], nvlinks_per_gpu=18, pcie_width=16
)


def nvlink(snap: Any) -> Any:
    return {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["nvlink"]


def test_gb200_tray_reports_its_domain(tmp_path: Path) -> None:
    fake = FabricNvml(gb200(), {i: Fabric() for i in range(4)})
    snap = source(fake, tmp_path).snapshot("gpu-001", None)
    assert isinstance(snap, FabricSnapshot)
    assert {g.model for g in snap.gpus} == {"GB200"}
    assert [f.domain for f in fabric_of(snap)] == [DOMAIN] * 4
    r = nvlink(snap)
    assert r.status is Status.PASS
    assert r.values["nvlink_domain"] == DOMAIN and r.values["fabric_unhealthy_gpus"] == 0
    assert fake.calls == ["V"] * 4


def test_hopper_has_no_domain_and_nothing_is_judged(tmp_path: Path) -> None:
    fake = FabricNvml([FakeGpu(i) for i in range(8)], {})  # NotSupported on every GPU
    snap = source(fake, tmp_path).snapshot("gpu-001", None)
    assert fabric_of(snap) == ()
    exp = NodeExpectation(gpu_count=8, gpu_model="H100-SXM", nvlinks_per_gpu=18)
    r = {r.check: r for r in run_passive(snap, exp, Thresholds())}["nvlink"]
    assert r.status is Status.PASS and "nvlink_domain" not in r.values


def test_module_without_fabric_calls_is_no_domain(tmp_path: Path) -> None:
    snap = source(FakeNvml(gb200()), tmp_path).snapshot("gpu-001", None)
    assert fabric_of(snap) == ()
    assert nvlink(snap).status is Status.PASS


def test_driver_without_the_versioned_call_uses_the_first(tmp_path: Path) -> None:
    fake = FabricNvml(gb200(), {i: Fabric() for i in range(4)}, versioned=False)
    snap = source(fake, tmp_path).snapshot("gpu-001", None)
    assert [f.domain for f in fabric_of(snap)] == [DOMAIN] * 4
    assert fake.calls == ["V", "v1"] * 4


def test_failed_registration_and_degraded_bandwidth_fail_the_check(tmp_path: Path) -> None:
    degraded = pynvml.NVML_GPU_FABRIC_HEALTH_MASK_DEGRADED_BW_TRUE
    fabric = {0: Fabric(), 1: Fabric(status=999), 2: Fabric(health_mask=degraded), 3: Fabric()}
    r = nvlink(source(FabricNvml(gb200(), fabric), tmp_path).snapshot("gpu-001", None))
    assert r.status is Status.FAIL and not r.fatal
    assert r.gpus == (1, 2)
    assert "GPU 1: NVLink fabric registration failed (NVML error 999)" in r.evidence
    assert "GPU 2: NVLink fabric bandwidth degraded" in r.evidence
    assert r.values["fabric_unhealthy_gpus"] == 2


def test_registration_under_way_warns(tmp_path: Path) -> None:
    fabric = {i: Fabric(state=pynvml.NVML_GPU_FABRIC_STATE_IN_PROGRESS) for i in range(4)}
    r = nvlink(source(FabricNvml(gb200(), fabric), tmp_path).snapshot("gpu-001", None))
    assert r.status is Status.WARN and "registration in progress" in r.evidence


def test_gpus_of_one_node_in_two_domains_fail(tmp_path: Path) -> None:
    fabric = {0: Fabric(), 1: Fabric(), 2: Fabric(clique=8), 3: Fabric()}
    r = nvlink(source(FabricNvml(gb200(), fabric), tmp_path).snapshot("gpu-001", None))
    assert r.status is Status.FAIL and r.gpus == (2,)
    assert "the node's is" in r.evidence


def test_catalogue_knows_gb200_with_derived_floors() -> None:
    assert NVLINKS_PER_GPU["GB200"] == 18 and expected_nvlinks("GB200", 4) == 18
    floors = load_floors()
    for model in ("B200", "GB200"):
        assert floors[model].source.startswith("DERIVED")
    gb = floors["GB200"]
    assert gb.gemm_bf16_tflops > floors["B200"].gemm_bf16_tflops
    assert gb.hbm_gbps > floors["H200"].hbm_gbps
    assert NvlinkCheck.version == "2"


# -- outside input: what NVML answers, what nodes post -------------------------------------


@given(st.text(max_size=80))
def test_only_domain_names_are_believed(value: str) -> None:
    got = believable_domain(value)
    assert got in ("", value)
    assert "\n" not in got and len(got) <= 47


@given(
    st.integers(min_value=-(2**31), max_value=2**32),
    st.integers(min_value=-(2**31), max_value=2**32),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.binary(min_size=0, max_size=20),
)
def test_any_fabric_answer_reads_or_is_none(state: int, status: int, mask: int, raw: bytes) -> None:
    @dataclass
    class Info:
        clusterUuid: bytes
        status: int
        cliqueId: int
        state: int
        healthMask: int

    f = gpu_fabric(0, Info(raw, status, 3, state, mask))
    if state not in (1, 2, 3):
        assert f is None
    else:
        assert f is not None and f.domain in ("", f"{uuid_text(raw)}/3")
        assert believable_domain(f.domain) == f.domain or not f.cluster_uuid


# -- a domain's fault, from the node records ---------------------------------------------------

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def node(name: str, failing: bool, domain: str = DOMAIN, **kw: Any) -> Node:
    health = NodeHealth(
        streaks={"nvlink": 1} if failing else {},
        last_values={"nvlink": {"nvlink_domain": domain}} if domain else {},
    )
    fields: dict[str, Any] = {
        "name": name,
        "pool": "training",
        "rack": "r01",
        "gpu_model": "GB200",
        "gpu_count": 4,
        "state": Lifecycle.IN_SERVICE,
        "state_since": NOW,
        "last_checked_at": NOW,
        "health": health,
    }
    fields.update(kw)
    return Node(**fields)


def tray(failing: int, size: int = 18, **kw: Any) -> list[Node]:
    return [node(f"gpu-{i:03d}", i < failing, **kw) for i in range(size)]


def test_most_of_a_domain_failing_is_its_fault() -> None:
    (fault,) = domain_faults(tray(9), NOW - timedelta(minutes=10))
    assert fault.domain == DOMAIN and len(fault.members) == 18 and len(fault.failing) == 9
    assert domain_faults(tray(8), NOW - timedelta(minutes=10)) == []
    # One node alone is its own fault, whatever the domain's size.
    assert domain_faults(tray(1, size=1), NOW) == []


def test_stale_or_missing_results_are_no_evidence() -> None:
    old = tray(18, last_checked_at=NOW - timedelta(hours=1))
    assert domain_faults(old, NOW - timedelta(minutes=10)) == []
    unknown = [*tray(9, size=9), *tray(9, size=9, domain="")]
    assert domain_faults(unknown, NOW - timedelta(minutes=10))[0].members == tuple(
        sorted(n.name for n in unknown[:9])
    )
    forged = tray(18, domain="gpu-001; rm -rf /")
    assert domain_faults(forged, NOW) == []
    assert recorded_domain({"nvlink": {"nvlink_domain": 7}}) == ""


def test_only_domains_failing_enough_as_recorded_are_read_closer() -> None:
    other = DOMAIN.replace("/7", "/8")
    found = [
        *(Member(f"a{i:02d}", DOMAIN, i < 9) for i in range(18)),
        *(Member(f"b{i:02d}", other, i < 8) for i in range(18)),
        *(Member(f"c{i:02d}", "not a domain", True) for i in range(18)),
    ]
    assert suspects(found) == [f"a{i:02d}" for i in range(18)]
    assert suspects([]) == []


def views(n: int, out: int = 0) -> list[NodeView]:
    return [
        NodeView(
            name=f"v{i}",
            pool="training",
            state=Lifecycle.DRAINED if i < out else Lifecycle.IN_SERVICE,
            automation_drain=i < out,
        )
        for i in range(n)
    ]


def test_the_domain_drains_whole_or_not_at_all() -> None:
    members = tray(18)
    roomy = PolicyConfig(drain_budget_fraction=0.5)
    p = plan(members, {"training": views(36)}, roomy)
    assert len(p.drain) == 18 and p.held == ""
    p = plan(members, {"training": views(36, out=1)}, roomy)
    assert p.drain == () and "room for 17" in p.held
    tight = PolicyConfig()
    p = plan(members, {"training": views(36)}, tight)
    assert p.drain == () and "budget (3 nodes)" in p.held


def test_nodes_out_already_or_someone_elses_are_not_drained_again() -> None:
    members = tray(18)
    members[0] = members[0].evolve(state=Lifecycle.DRAINED, drain_reason="maintenance")
    members[1] = members[1].evolve(state=Lifecycle.DRAINED, drain_reason="computectl: xid")
    p = plan(members, {"training": views(36)}, PolicyConfig(drain_budget_fraction=0.5))
    assert len(p.drain) == 16 and members[0].name not in p.drain


@pytest.mark.parametrize("model", sorted(NVLINKS_PER_GPU))
def test_every_catalogued_model_has_floors(model: str) -> None:
    assert model in load_floors()
