"""The local node's GPUs through NVML (``nvidia-ml-py``), as a TelemetrySource.

NVML is initialised once per NvmlTelemetry and kept until ``close``: an
``nvmlInit`` costs far more than all the per-field calls of a snapshot, and
the passive suite must stay well under two seconds on an 8-GPU node.

A field a device does not support (NotSupported, an old driver without the
function, no permission) degrades to a neutral value that no check fails
on; only "no NVML at all" is an error, raised as TelemetrySourceError so
the node check reports a failed ``nvml`` check instead of a clean node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from health.infiniband import SYSFS_INFINIBAND, read_ib_ports
from health.kernel_log import KernelLog, LogSource, normalise_bus_id
from health.nvlink_domain import FabricSnapshot, GpuFabric, gpu_fabric
from health.telemetry import (
    THROTTLE_GPU_IDLE,
    THROTTLE_HW_POWER_BRAKE,
    THROTTLE_HW_SLOWDOWN,
    THROTTLE_HW_THERMAL,
    THROTTLE_SW_POWER_CAP,
    THROTTLE_SW_THERMAL,
    THROTTLE_SYNC_BOOST,
    GpuReading,
    NodeSnapshot,
    TelemetrySourceError,
)

if TYPE_CHECKING:
    from health.power_nvml import NvmlPower

__all__ = ["KernelLog", "LogSource", "NvmlTelemetry", "cuda_version_text", "gpu_model"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# NVML's device names for the models the floors and inventory know, to their short names.
_MODELS = {
    "NVIDIA H100 80GB HBM3": "H100-SXM",
    "NVIDIA H200": "H200",
    "NVIDIA A100-SXM4-80GB": "A100-SXM",
    "NVIDIA A100-SXM4-40GB": "A100-SXM",
    "A100-SXM4-80GB": "A100-SXM",
    "A100-SXM4-40GB": "A100-SXM",
    "NVIDIA B200": "B200",
    "NVIDIA GB200": "GB200",
}

# nvmlClocksEventReason* bits (the same values as the older nvmlClocksThrottleReason*);
# part of NVML's ABI, so spelled out rather than looked up on the module.
_THROTTLE_BITS = (
    (0x01, THROTTLE_GPU_IDLE),
    (0x04, THROTTLE_SW_POWER_CAP),
    (0x08, THROTTLE_HW_SLOWDOWN),
    (0x10, THROTTLE_SYNC_BOOST),
    (0x20, THROTTLE_SW_THERMAL),
    (0x40, THROTTLE_HW_THERMAL),
    (0x80, THROTTLE_HW_POWER_BRAKE),
)

_NVML_FEATURE_ENABLED = 1
# Used where the module does not carry the constant (an old nvidia-ml-py).
_DEFAULT_MAX_LINKS = 18
_NVLINK_ERROR_DL_REPLAY = 0
_NVLINK_ERROR_DL_CRC_FLIT = 2
_TEMPERATURE_GPU = 0
_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
_MEMORY_ERROR_TYPE_UNCORRECTED = 1
_VOLATILE_ECC = 0
_AGGREGATE_ECC = 1


def gpu_model(name: str) -> str:
    """NVML's device name to the model name floors and inventory use; unknown names as-is."""
    return _MODELS.get(name.strip(), name.strip())


def cuda_version_text(version: int) -> str:
    """NVML's CUDA driver version integer (12040) to "12.4"."""
    return f"{version // 1000}.{(version % 1000) // 10}"


def throttle_names(mask: int) -> frozenset[str]:
    return frozenset(name for bit, name in _THROTTLE_BITS if mask & bit)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    return str(value).strip()


class NvmlTelemetry:
    """TelemetrySource for the node this runs on.

    ``nvml`` stands in for the ``pynvml`` module (tests pass a fake, for want
    of hardware); None imports the real one on first use.
    """

    def __init__(
        self,
        kernel_log: KernelLog | None = None,
        *,
        nvml: Any = None,
        ib_root: Path = SYSFS_INFINIBAND,
    ) -> None:
        self._kernel_log = kernel_log if kernel_log is not None else KernelLog()
        self._nvml: Any = nvml
        self._ib_root = ib_root
        self._initialised = False

    # -- lifecycle ---------------------------------------------------------

    def _start(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise TelemetrySourceError(
                    "NVML unavailable: nvidia-ml-py (pynvml) is not installed"
                ) from exc
            self._nvml = pynvml
        nv = self._nvml
        if not self._initialised:
            try:
                nv.nvmlInit()
            except nv.NVMLError as exc:
                raise TelemetrySourceError(
                    f"NVML unavailable: nvmlInit failed: {exc} (is the NVIDIA driver loaded?)"
                ) from exc
            self._initialised = True
        return nv

    def close(self) -> None:
        if self._initialised and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvmlShutdown: %s", exc)
        self._initialised = False

    def power_source(self, node: str) -> NvmlPower:
        """This node's GPU power (health/power_nvml.py) on the same NVML session."""
        from health.power_nvml import NvmlPower

        return NvmlPower(self._start())

    def __enter__(self) -> NvmlTelemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the snapshot ------------------------------------------------------

    def snapshot(self, node: str, since: datetime | None) -> NodeSnapshot:
        nv = self._start()
        at = datetime.now(UTC)
        try:
            count = int(nv.nvmlDeviceGetCount())
        except nv.NVMLError as exc:
            raise TelemetrySourceError(f"NVML cannot count the GPUs: {exc}") from exc
        gpus: list[GpuReading] = []
        for index in range(count):
            reading = self._gpu(nv, index)
            if reading is not None:
                gpus.append(reading)
        bus_to_index = {g.pci_bus_id: g.index for g in gpus}
        events, xid_error = self._kernel_log.xid_events(since, bus_to_index, now=at)
        try:
            ib_ports = read_ib_ports(self._ib_root)
        except OSError as exc:
            log.warning("cannot read %s: %s", self._ib_root, exc)
            ib_ports = ()
        cuda = self._call(nv, nv.nvmlSystemGetCudaDriverVersion, default=0)
        fabric = tuple(f for f in (self._fabric(nv, g.index) for g in gpus) if f is not None)
        return FabricSnapshot(
            fabric=fabric,
            node=node,
            at=at,
            gpus=tuple(gpus),
            xid_events=events,
            xid_source_error=xid_error,
            driver_version=_text(self._call(nv, nv.nvmlSystemGetDriverVersion, default="")),
            cuda_version=cuda_version_text(int(cuda)) if cuda else "",
            ib_ports=ib_ports,
        )

    @staticmethod
    def _call(nv: Any, fn: Callable[..., T], *args: object, default: T) -> T:
        """One NVML field; the neutral ``default`` where the device or driver lacks it."""
        try:
            return fn(*args)
        except nv.NVMLError as exc:
            log.debug("%s: %s", getattr(fn, "__name__", fn), exc)
            return default

    def _gpu(self, nv: Any, index: int) -> GpuReading | None:
        """One GPU; None when NVML lists it but cannot reach it (lost, fallen off the bus).

        A GPU that cannot be read is left out of the snapshot, so the gpu_count
        check names it missing.
        """
        try:
            h = nv.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(nv.nvmlDeviceGetUUID(h))
        except nv.NVMLError as exc:
            log.warning("GPU %d unreadable: %s", index, exc)
            return None
        call = self._call
        pci = call(nv, nv.nvmlDeviceGetPciInfo, h, default=None)
        bus_id = normalise_bus_id(_text(pci.busId)) if pci is not None else ""
        util = call(nv, nv.nvmlDeviceGetUtilizationRates, h, default=None)
        ecc_type = getattr(nv, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", _MEMORY_ERROR_TYPE_UNCORRECTED)
        _, remap_unc, remap_pending, remap_failure = call(
            nv, nv.nvmlDeviceGetRemappedRows, h, default=(0, 0, 0, 0)
        )
        links_total, links_down, crc, replay = self._nvlinks(nv, h)
        gen_cur, gen_max = self._pair(
            call(nv, nv.nvmlDeviceGetCurrPcieLinkGeneration, h, default=0),
            call(nv, nv.nvmlDeviceGetMaxPcieLinkGeneration, h, default=0),
        )
        width_cur, width_max = self._pair(
            call(nv, nv.nvmlDeviceGetCurrPcieLinkWidth, h, default=0),
            call(nv, nv.nvmlDeviceGetMaxPcieLinkWidth, h, default=0),
        )
        return GpuReading(
            index=index,
            uuid=uuid,
            serial=_text(call(nv, nv.nvmlDeviceGetSerial, h, default="")),
            model=gpu_model(_text(call(nv, nv.nvmlDeviceGetName, h, default=""))),
            pci_bus_id=bus_id,
            temperature_celsius=float(
                call(
                    nv,
                    nv.nvmlDeviceGetTemperature,
                    h,
                    getattr(nv, "NVML_TEMPERATURE_GPU", _TEMPERATURE_GPU),
                    default=0,
                )
            ),
            # 0 is "unknown": the temperature check then judges against its own limit.
            temperature_slowdown_celsius=float(
                call(
                    nv,
                    nv.nvmlDeviceGetTemperatureThreshold,
                    h,
                    getattr(
                        nv, "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN", _TEMPERATURE_THRESHOLD_SLOWDOWN
                    ),
                    default=0,
                )
            ),
            power_watts=call(nv, nv.nvmlDeviceGetPowerUsage, h, default=0) / 1000.0,
            power_limit_watts=call(nv, nv.nvmlDeviceGetEnforcedPowerLimit, h, default=0) / 1000.0,
            utilisation_ratio=(util.gpu / 100.0) if util is not None else 0.0,
            ecc_volatile_uncorrected=int(
                call(
                    nv,
                    nv.nvmlDeviceGetTotalEccErrors,
                    h,
                    ecc_type,
                    getattr(nv, "NVML_VOLATILE_ECC", _VOLATILE_ECC),
                    default=0,
                )
            ),
            ecc_aggregate_uncorrected=int(
                call(
                    nv,
                    nv.nvmlDeviceGetTotalEccErrors,
                    h,
                    ecc_type,
                    getattr(nv, "NVML_AGGREGATE_ECC", _AGGREGATE_ECC),
                    default=0,
                )
            ),
            # Page retirement is pre-Ampere; A100 and later answer NotSupported and
            # report through row remapping instead.
            retired_pages_pending=int(
                call(nv, nv.nvmlDeviceGetRetiredPagesPendingStatus, h, default=0)
            )
            == _NVML_FEATURE_ENABLED,
            remapped_rows_pending=bool(remap_pending),
            remapped_rows_failure=bool(remap_failure),
            remapped_rows_uncorrectable=int(remap_unc),
            nvlink_links_total=links_total,
            nvlink_links_down=links_down,
            nvlink_crc_errors=crc,
            nvlink_replay_errors=replay,
            pcie_gen_current=gen_cur,
            pcie_gen_max=gen_max,
            pcie_width_current=width_cur,
            pcie_width_max=width_max,
            throttle_reasons=throttle_names(self._clock_events(nv, h)),
            vbios_version=_text(call(nv, nv.nvmlDeviceGetVbiosVersion, h, default="")),
        )

    @staticmethod
    def _pair(current: int, maximum: int) -> tuple[int, int]:
        """PCIe (current, max); one unreadable side takes the other's value, so it is not judged."""
        current, maximum = int(current), int(maximum)
        return (current or maximum, maximum or current)

    def _nvlinks(self, nv: Any, h: object) -> tuple[int, tuple[int, ...], int, int]:
        """(links present, links down, CRC flit errors, replays) over the links NVML knows.

        A link NVML answers NotSupported or InvalidArgument for does not exist on
        this device (PCIe cards, indices past the device's link count): it is not
        counted, so an H100 SXM shows 18 links, not NVML_NVLINK_MAX_LINKS.
        """
        max_links = int(getattr(nv, "NVML_NVLINK_MAX_LINKS", _DEFAULT_MAX_LINKS))
        crc_kind = getattr(nv, "NVML_NVLINK_ERROR_DL_CRC_FLIT", _NVLINK_ERROR_DL_CRC_FLIT)
        replay_kind = getattr(nv, "NVML_NVLINK_ERROR_DL_REPLAY", _NVLINK_ERROR_DL_REPLAY)
        total = crc = replay = 0
        down: list[int] = []
        for link in range(max_links):
            try:
                state = nv.nvmlDeviceGetNvLinkState(h, link)
            except nv.NVMLError:
                continue
            total += 1
            if int(state) != _NVML_FEATURE_ENABLED:
                down.append(link)
                continue
            # Counters some GPUs do not keep (Blackwell moved them to field values) read as 0.
            crc += int(
                self._call(nv, nv.nvmlDeviceGetNvLinkErrorCounter, h, link, crc_kind, default=0)
            )
            replay += int(
                self._call(nv, nv.nvmlDeviceGetNvLinkErrorCounter, h, link, replay_kind, default=0)
            )
        return total, tuple(down), crc, replay

    @staticmethod
    def _fabric(nv: Any, index: int) -> GpuFabric | None:
        """The GPU's NVLink domain (cluster UUID, clique, registration state and status);
        None where the GPU, driver or nvidia-ml-py has none: H100/H200 and B200 answer
        NotSupported, drivers before R550 lack the call, older modules lack the structure.
        The versioned call (with the health mask) first, then the original one."""
        from ctypes import byref

        for fn_name, struct_name in (
            ("nvmlDeviceGetGpuFabricInfoV", "c_nvmlGpuFabricInfoV_t"),
            ("nvmlDeviceGetGpuFabricInfo", "c_nvmlGpuFabricInfo_t"),
        ):
            fn, struct = getattr(nv, fn_name, None), getattr(nv, struct_name, None)
            if fn is None or struct is None:
                continue
            try:
                info = struct()
                fn(nv.nvmlDeviceGetHandleByIndex(index), byref(info))
            except nv.NVMLError as exc:
                log.debug("%s: %s", fn_name, exc)
                continue
            return gpu_fabric(index, info)
        return None

    def _clock_events(self, nv: Any, h: object) -> int:
        """The clock event reasons mask, from the pre-12.2 "throttle reasons" call if need be."""
        newer = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        older = getattr(nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        for fn in (newer, older):
            if fn is None:
                continue
            try:
                return int(fn(h))
            except nv.NVMLError as exc:
                # An older driver lacks the newer symbol (FunctionNotFound): try the old one.
                log.debug("%s: %s", getattr(fn, "__name__", fn), exc)
        return 0
