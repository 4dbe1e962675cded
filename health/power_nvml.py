"""GPU power through NVML: draw and limits read, limits set and read back.

``nvmlDeviceSetPowerManagementLimit`` needs root (or CAP_SYS_ADMIN); without it NVML answers
NoPermission, which the agent reports as the cap's failure. A field a device lacks reads
as None (unknown), never as a limit of 0."""

from __future__ import annotations

from typing import Any

from health.power import GpuPower, NodeReading, PowerError, read_dcmi


def _watts(mw: object) -> float:
    return float(mw) / 1000.0  # type: ignore[arg-type]


class NvmlPower:
    """A PowerSource over an initialised NVML module (``nvml``: pynvml, or a test's fake)."""

    def __init__(self, nvml: Any) -> None:
        self._nv = nvml

    def _handle(self, index: int) -> Any:
        nv = self._nv
        try:
            return nv.nvmlDeviceGetHandleByIndex(index)
        except nv.NVMLError as exc:
            raise PowerError(f"cannot reach GPU {index}: {exc}") from exc

    def _opt(self, fn: Any, h: Any) -> float | None:
        try:
            return _watts(fn(h))
        except self._nv.NVMLError:
            return None

    def read_power(self) -> tuple[GpuPower, ...]:
        nv = self._nv
        try:
            count = int(nv.nvmlDeviceGetCount())
        except nv.NVMLError as exc:
            raise PowerError(f"NVML cannot count the GPUs: {exc}") from exc
        out = []
        for i in range(count):
            try:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                uuid = nv.nvmlDeviceGetUUID(h)
            except nv.NVMLError:
                continue  # a GPU off the bus: the passive checks name it
            lo: float | None
            hi: float | None
            try:
                lo, hi = (_watts(v) for v in nv.nvmlDeviceGetPowerManagementLimitConstraints(h))
            except nv.NVMLError:
                lo = hi = None
            out.append(
                GpuPower(
                    index=i,
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    power_watts=self._opt(nv.nvmlDeviceGetPowerUsage, h) or 0.0,
                    limit_watts=self._opt(nv.nvmlDeviceGetPowerManagementLimit, h),
                    enforced_limit_watts=self._opt(nv.nvmlDeviceGetEnforcedPowerLimit, h),
                    default_limit_watts=self._opt(nv.nvmlDeviceGetPowerManagementDefaultLimit, h),
                    min_limit_watts=lo,
                    max_limit_watts=hi,
                )
            )
        return tuple(out)

    def node_reading(self, ipmitool: str | None) -> NodeReading:
        return read_dcmi(ipmitool)

    def set_limit(self, index: int, watts: float) -> float:
        nv = self._nv
        h = self._handle(index)
        try:
            nv.nvmlDeviceSetPowerManagementLimit(h, round(watts * 1000))
        except nv.NVMLError as exc:
            raise PowerError(f"nvmlDeviceSetPowerManagementLimit: {exc}") from exc
        try:
            return _watts(nv.nvmlDeviceGetPowerManagementLimit(h))
        except nv.NVMLError as exc:
            raise PowerError(f"the limit set cannot be read back: {exc}") from exc
