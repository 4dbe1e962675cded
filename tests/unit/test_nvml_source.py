"""NvmlTelemetry against a fake pynvml module: the fake stands in only for the missing GPUs.

The fake follows nvidia-ml-py's API: the same function names and argument
order, NVMLError subclasses per error code, str results, mW for power, and
``nvmlPciInfo_t.busId`` in NVML's ``00000000:3B:00.0`` form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from health.kernel_log import KernelLog, LogSource, LogUnavailable
from health.nvml import NvmlTelemetry, cuda_version_text, gpu_model, throttle_names
from health.result import Status
from health.runner import run_passive
from health.telemetry import (
    THROTTLE_GPU_IDLE,
    THROTTLE_HW_SLOWDOWN,
    NodeExpectation,
    TelemetrySourceError,
)
from health.thresholds import Thresholds

BUSES = ("18", "2a", "3a", "5d", "9a", "ab", "ba", "db")
UUIDS = tuple(f"GPU-5f3c1e2a-0000-4000-8000-00000000000{i}" for i in range(8))


# Class names follow pynvml's own spelling (NVMLError_NotSupported, ...).
class NVMLError(Exception):
    def __init__(self, value: int = 999) -> None:
        super().__init__(value)
        self.value = value


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(3)


class NVMLError_InvalidArgument(NVMLError):
    def __init__(self) -> None:
        super().__init__(2)


class NVMLError_DriverNotLoaded(NVMLError):
    def __init__(self) -> None:
        super().__init__(9)


class NVMLError_GpuIsLost(NVMLError):
    def __init__(self) -> None:
        super().__init__(15)


@dataclass
class FakeGpu:
    index: int
    name: str = "NVIDIA H100 80GB HBM3"
    links: int = 18
    links_down: tuple[int, ...] = ()
    lost: bool = False
    # Names of functions that answer NotSupported on this GPU.
    unsupported: set[str] = field(default_factory=set)
    clock_events: int = 0x1  # idle


class FakeNvml:
    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVML_NVLINK_MAX_LINKS = 36
    NVML_NVLINK_ERROR_DL_REPLAY = 0
    NVML_NVLINK_ERROR_DL_CRC_FLIT = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_AGGREGATE_ECC = 1

    def __init__(self, gpus: list[FakeGpu], *, driver: bool = True) -> None:
        self.gpus = gpus
        self.driver = driver
        self.init_calls = 0
        self.shutdown_calls = 0

    # lifecycle
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if not self.driver:
            raise NVMLError_DriverNotLoaded()

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    # system
    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.90.07"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        g = self.gpus[index]
        if g.lost:
            raise NVMLError_GpuIsLost()
        return g

    # per device
    def _check(self, g: FakeGpu, fn: str) -> None:
        if fn in g.unsupported:
            raise NVMLError_NotSupported()

    def nvmlDeviceGetUUID(self, g: FakeGpu) -> str:
        return UUIDS[g.index]

    def nvmlDeviceGetSerial(self, g: FakeGpu) -> str:
        self._check(g, "serial")
        return f"165422305{1000 + g.index}"

    def nvmlDeviceGetName(self, g: FakeGpu) -> str:
        return g.name

    def nvmlDeviceGetPciInfo(self, g: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(busId=f"00000000:{BUSES[g.index].upper()}:00.0")

    def nvmlDeviceGetTemperature(self, g: FakeGpu, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        self._check(g, "temperature")
        return 41

    def nvmlDeviceGetTemperatureThreshold(self, g: FakeGpu, kind: int) -> int:
        assert kind == self.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        self._check(g, "temperature")
        return 87

    def nvmlDeviceGetPowerUsage(self, g: FakeGpu) -> int:
        self._check(g, "power")
        return 71_234  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, g: FakeGpu) -> int:
        self._check(g, "power")
        return 700_000

    def nvmlDeviceGetUtilizationRates(self, g: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=0, memory=0)

    def nvmlDeviceGetTotalEccErrors(self, g: FakeGpu, kind: int, counter: int) -> int:
        self._check(g, "ecc")
        return 0

    def nvmlDeviceGetRetiredPagesPendingStatus(self, g: FakeGpu) -> int:
        raise NVMLError_NotSupported()  # as on every A100/H100

    def nvmlDeviceGetRemappedRows(self, g: FakeGpu) -> tuple[int, int, int, int]:
        self._check(g, "remap")
        return (0, 0, 0, 0)

    def nvmlDeviceGetNvLinkState(self, g: FakeGpu, link: int) -> int:
        if "nvlink" in g.unsupported:
            raise NVMLError_NotSupported()
        if link >= g.links:
            raise NVMLError_InvalidArgument()
        return 0 if link in g.links_down else 1

    def nvmlDeviceGetNvLinkErrorCounter(self, g: FakeGpu, link: int, counter: int) -> int:
        self._check(g, "nvlink_counters")
        return 1 if counter == self.NVML_NVLINK_ERROR_DL_CRC_FLIT else 0

    def nvmlDeviceGetCurrPcieLinkGeneration(self, g: FakeGpu) -> int:
        self._check(g, "pcie")
        return 5

    def nvmlDeviceGetMaxPcieLinkGeneration(self, g: FakeGpu) -> int:
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, g: FakeGpu) -> int:
        self._check(g, "pcie")
        return 16

    def nvmlDeviceGetMaxPcieLinkWidth(self, g: FakeGpu) -> int:
        return 16

    def nvmlDeviceGetCurrentClocksEventReasons(self, g: FakeGpu) -> int:
        self._check(g, "clock_events")
        return g.clock_events

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, g: FakeGpu) -> int:
        self._check(g, "clock_throttle")
        return g.clock_events

    def nvmlDeviceGetVbiosVersion(self, g: FakeGpu) -> str:
        self._check(g, "vbios")
        return "96.00.99.00.01"


def no_xid(since: object) -> list[str]:
    return ["2026-11-26T03:00:00.000000+00:00 gpu-001 kernel: nvidia-nvswitch0: probe"]


def source(fake: Any, tmp_path: Path, lines: Any = no_xid) -> NvmlTelemetry:
    return NvmlTelemetry(KernelLog([LogSource("test", lines)]), nvml=fake, ib_root=tmp_path)


def h100_node(n: int = 8) -> list[FakeGpu]:
    return [FakeGpu(i) for i in range(n)]


EXPECT = NodeExpectation(
    gpu_count=8, gpu_model="H100-SXM", gpu_uuids=UUIDS, nvlinks_per_gpu=18, pcie_width=16
)


def test_healthy_node_passes_every_passive_check(tmp_path: Path) -> None:
    fake = FakeNvml(h100_node())
    snap = source(fake, tmp_path).snapshot("gpu-001", None)
    g = snap.gpus[3]
    assert (g.uuid, g.model, g.pci_bus_id) == (UUIDS[3], "H100-SXM", "0000:5d:00")
    assert g.serial == "1654223051003"
    assert (g.power_watts, g.power_limit_watts) == (71.234, 700.0)
    assert (g.temperature_celsius, g.temperature_slowdown_celsius) == (41.0, 87.0)
    assert (g.nvlink_links_total, g.nvlink_links_down) == (18, ())
    assert (g.nvlink_crc_errors, g.nvlink_replay_errors) == (18, 0)
    assert g.throttle_reasons == frozenset({THROTTLE_GPU_IDLE})
    assert g.vbios_version == "96.00.99.00.01"
    assert not g.retired_pages_pending
    assert (snap.driver_version, snap.cuda_version) == ("550.90.07", "12.4")
    assert snap.xid_source_error is None
    results = run_passive(snap, EXPECT, Thresholds())
    assert {r.check: r.status for r in results} == {r.check: Status.PASS for r in results}
    assert len(results) >= 7


def test_one_gpu_missing_fails_gpu_count(tmp_path: Path) -> None:
    snap = source(FakeNvml(h100_node(7)), tmp_path).snapshot("gpu-001", None)
    results = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}
    r = results["gpu_count"]
    assert r.status is Status.FAIL and r.fatal
    assert r.gpus == (7,)


def test_lost_gpu_is_left_out_and_named_missing(tmp_path: Path) -> None:
    gpus = h100_node()
    gpus[2].lost = True
    snap = source(FakeNvml(gpus), tmp_path).snapshot("gpu-001", None)
    assert [g.index for g in snap.gpus] == [0, 1, 3, 4, 5, 6, 7]
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["gpu_count"]
    assert r.status is Status.FAIL and UUIDS[2] in r.evidence


def test_unsupported_fields_degrade_to_neutral_values(tmp_path: Path) -> None:
    everything = {
        "serial",
        "temperature",
        "power",
        "ecc",
        "remap",
        "nvlink",
        "pcie",
        "clock_events",
        "clock_throttle",
        "vbios",
    }
    gpus = [FakeGpu(i, name="NVIDIA L4", unsupported=set(everything)) for i in range(8)]
    snap = source(FakeNvml(gpus), tmp_path).snapshot("gpu-001", None)
    g = snap.gpus[0]
    assert g.model == "NVIDIA L4"  # unknown names are kept as they are
    assert (g.serial, g.vbios_version) == ("", "")
    assert (g.temperature_celsius, g.temperature_slowdown_celsius) == (0.0, 0.0)
    assert (g.power_watts, g.power_limit_watts) == (0.0, 0.0)
    assert (g.ecc_volatile_uncorrected, g.remapped_rows_pending) == (0, False)
    assert (g.nvlink_links_total, g.nvlink_links_down) == (0, ())
    # Current width unreadable: taken as the maximum, so it is not judged.
    assert (g.pcie_width_current, g.pcie_width_max) == (16, 16)
    assert g.throttle_reasons == frozenset()
    expect = NodeExpectation(gpu_count=8)
    failed = [r for r in run_passive(snap, expect, Thresholds()) if r.status is not Status.PASS]
    assert failed == []


def test_old_driver_falls_back_to_throttle_reasons(tmp_path: Path) -> None:
    gpus = [FakeGpu(i, unsupported={"clock_events"}, clock_events=0x9) for i in range(8)]
    snap = source(FakeNvml(gpus), tmp_path).snapshot("gpu-001", None)
    assert snap.gpus[0].throttle_reasons == frozenset({THROTTLE_GPU_IDLE, THROTTLE_HW_SLOWDOWN})
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["throttle"]
    assert r.status is Status.FAIL


def test_link_down_fails_nvlink(tmp_path: Path) -> None:
    gpus = h100_node()
    gpus[4].links_down = (7,)
    snap = source(FakeNvml(gpus), tmp_path).snapshot("gpu-001", None)
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["nvlink"]
    assert r.status is Status.FAIL and r.gpus == (4,)
    assert snap.gpus[4].nvlink_links_total == 18


def test_no_driver_raises_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(TelemetrySourceError, match="nvmlInit failed") as info:
        source(FakeNvml(h100_node(), driver=False), tmp_path).snapshot("gpu-001", None)
    assert "\n" not in str(info.value)


def test_nvml_starts_once_and_closes(tmp_path: Path) -> None:
    fake = FakeNvml(h100_node())
    with source(fake, tmp_path) as telemetry:
        for _ in range(3):
            telemetry.snapshot("gpu-001", None)
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_xid_lines_map_to_gpu_index(tmp_path: Path) -> None:
    def lines(since: object) -> list[str]:
        return [
            "2026-11-26T04:01:02.123456+00:00 gpu-001 kernel: NVRM: Xid (PCI:0000:9a:00): 79, "
            "pid=0, GPU has fallen off the bus."
        ]

    snap = source(FakeNvml(h100_node()), tmp_path, lines).snapshot("gpu-001", None)
    assert [(e.code, e.gpu_index) for e in snap.xid_events] == [(79, 4)]
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["xid"]
    assert r.status is Status.FAIL and r.gpus == (4,)


def test_unreadable_kernel_log_warns(tmp_path: Path) -> None:
    def denied(since: object) -> list[str]:
        raise LogUnavailable("dmesg: read kernel buffer failed: Operation not permitted")

    snap = source(FakeNvml(h100_node()), tmp_path, denied).snapshot("gpu-001", None)
    assert snap.xid_source_error is not None and "not permitted" in snap.xid_source_error
    r = {r.check: r for r in run_passive(snap, EXPECT, Thresholds())}["xid"]
    assert r.status is Status.WARN


def test_snapshot_reads_infiniband_ports(tmp_path: Path) -> None:
    port = tmp_path / "mlx5_0" / "ports" / "1"
    port.mkdir(parents=True)
    (port / "state").write_text("4: ACTIVE\n")
    (port / "phys_state").write_text("5: LinkUp\n")
    (port / "rate").write_text("400 Gb/sec (4X NDR)\n")
    snap = source(FakeNvml(h100_node()), tmp_path).snapshot("gpu-001", None)
    assert [(p.name, p.rate_gbps) for p in snap.ib_ports] == [("mlx5_0/1", 400.0)]


def test_passive_path_is_fast(tmp_path: Path) -> None:
    telemetry = source(FakeNvml(h100_node()), tmp_path)
    t0 = time.perf_counter()
    for _ in range(10):
        snap = telemetry.snapshot("gpu-001", None)
        run_passive(snap, EXPECT, Thresholds())
    assert (time.perf_counter() - t0) / 10 < 0.2


def test_names_and_versions() -> None:
    assert gpu_model("NVIDIA H200") == "H200"
    assert gpu_model("NVIDIA A100-SXM4-40GB") == "A100-SXM"
    assert gpu_model("NVIDIA B200") == "B200"
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(13000) == "13.0"
    assert throttle_names(0x80 | 0x4) == frozenset({"hw_power_brake_slowdown", "sw_power_cap"})
