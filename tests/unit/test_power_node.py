"""The node's side of power: the BMC's reading through ipmitool (parsed, or "not
available"), clamping, the control plane's answer read as outside input, and NVML's limits
against a fake NVML module (no GPU here; benchmarks/gpu_node_check.py runs the real one)."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.power import (
    GpuPower,
    NodeReading,
    PowerError,
    apply_actions,
    clamp,
    exchange,
    parse_actions,
    parse_dcmi,
    read_dcmi,
)
from health.power_nvml import NvmlPower

# ipmitool 1.8.19 on a Dell iDRAC 9 and on a Supermicro X12 (spacing as printed).
DCMI_DELL = """
    Instantaneous power reading:                   412 Watts
    Minimum during sampling period:                 88 Watts
    Maximum during sampling period:               1232 Watts
    Average power reading over sample period:      401 Watts
    IPMI timestamp:                           Wed Dec  2 21:10:03 2026
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated
"""
DCMI_DEACTIVATED = DCMI_DELL.replace("activated", "deactivated")


def test_dcmi_instantaneous_reading() -> None:
    assert parse_dcmi(DCMI_DELL) == 412.0
    assert parse_dcmi("Instantaneous power reading: 5230.5 Watts\n") == 5230.5


@pytest.mark.parametrize(
    "text",
    [DCMI_DEACTIVATED, "", "Instantaneous power reading: 0 Watts", "garbage\x00\n", "-1 Watts"],
)
def test_dcmi_without_a_reading_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_dcmi(text)


@given(st.text(max_size=400))
def test_dcmi_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert 0 < parse_dcmi(text) <= 100_000


def _run(code: int, out: str = "", err: str = "") -> Any:
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert argv[1:] == ["dcmi", "power", "reading"]
        return subprocess.CompletedProcess(argv, code, out, err)

    return run


def test_bmc_reading_or_not_available() -> None:
    found = lambda _t: "/usr/bin/ipmitool"  # noqa: E731
    assert read_dcmi("ipmitool", _run(0, DCMI_DELL), found) == NodeReading(412.0, "ipmi-dcmi")
    missing = read_dcmi("ipmitool", _run(0, DCMI_DELL), lambda _t: None)
    assert missing.watts is None and "not found" in missing.error
    no_bmc = read_dcmi(
        "ipmitool", _run(1, err="Could not open device at /dev/ipmi0: No such file"), found
    )
    assert no_bmc.watts is None and "/dev/ipmi0" in no_bmc.error
    off = read_dcmi(None)
    assert off.watts is None and off.error.startswith("not available")

    def hangs(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, 5)

    assert read_dcmi("ipmitool", hangs, found).error.startswith("not available: TimeoutExpired")


def test_bmc_reading_with_a_real_process(tmp_path: Any) -> None:
    tool = tmp_path / "ipmitool"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{DCMI_DELL}\nEOF\n")
    tool.chmod(0o755)
    assert read_dcmi(str(tool)).watts == 412.0


@given(st.floats(allow_nan=False), st.floats(0, 1000), st.floats(0, 1000))
def test_clamp_stays_within_the_gpus_range(w: float, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert lo <= clamp(w, lo, hi) <= hi
    assert clamp(w, None, None) == w


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=30))  # fmt: skip
def test_the_answer_is_outside_input(raw: Any) -> None:
    actions, _ = parse_actions(raw)
    for a in actions:
        assert a.action in ("apply", "revert")
        assert a.action == "revert" or 0 < a.watts <= 5000


def test_actions_read() -> None:
    actions, skipped = parse_actions(
        [
            {"id": 1, "action": "apply", "watts": 300, "gpus": [0, 1]},
            {"id": 2, "action": "revert", "restore": {"0": 700.0, "1": None}},
            {"id": 3, "action": "apply", "watts": float("nan")},
            {"id": True, "action": "apply", "watts": 300},
            {"id": 4, "action": "format-disk"},
        ]
    )
    assert [a.id for a in actions] == [1, 2] and len(skipped) == 3
    assert actions[1].restore == {0: 700.0, 1: None}


class FakeSource:
    """A PowerSource whose limits are set for real in the fake; ``refuse``: NoPermission."""

    def __init__(self, refuse: bool = False) -> None:
        self.limits = {0: 700.0, 1: 700.0}
        self.refuse = refuse

    def read_power(self) -> tuple[GpuPower, ...]:
        return tuple(
            GpuPower(i, f"GPU-{i}", min(600.0, v), v, v, 700.0, 200.0, 700.0)
            for i, v in self.limits.items()
        )

    def node_reading(self, ipmitool: str | None) -> NodeReading:
        return NodeReading(5000.0, "ipmi-dcmi")

    def set_limit(self, index: int, watts: float) -> float:
        if self.refuse:
            raise PowerError("Insufficient Permissions")
        self.limits[index] = watts
        return watts


def test_apply_clamps_reads_back_and_reverts() -> None:
    src = FakeSource()
    (applied,) = apply_actions(src, parse_actions([{"id": 7, "action": "apply", "watts": 50}])[0],
                               src.read_power())  # fmt: skip
    assert applied["ok"] and src.limits == {0: 200.0, 1: 200.0}
    assert applied["gpus"][0] == {"index": 0, "before": 700.0, "clamped": 200.0, "after": 200.0}
    restore = [{"id": 7, "action": "revert", "restore": {"0": 700.0, "1": None}}]
    (reverted,) = apply_actions(src, parse_actions(restore)[0], src.read_power())
    assert reverted["ok"] and src.limits == {0: 700.0, 1: 700.0}  # None: the default


def test_a_node_that_cannot_apply_says_why() -> None:
    src = FakeSource(refuse=True)
    answer = [{"id": 9, "action": "apply", "watts": 300, "gpus": [0, 5]}]
    (out,) = apply_actions(src, parse_actions(answer)[0], src.read_power())
    assert not out["ok"] and "GPU 5 is not on this node" in out["detail"]
    assert "Insufficient Permissions" in out["detail"] and src.limits[0] == 700.0


def test_exchange_posts_readings_then_outcomes() -> None:
    src, posts = FakeSource(), []

    def post(body: dict[str, Any]) -> dict[str, Any]:
        posts.append(body)
        if len(posts) == 1:
            return {"actions": [{"id": 1, "action": "apply", "watts": 400, "gpus": [1]}]}
        return {"actions": []}

    outcomes, notes = exchange(src, post, "ipmitool")
    assert len(posts) == 2 and posts[0]["node_watts"] == 5000.0 and posts[0]["outcomes"] == []
    assert posts[1]["outcomes"] == outcomes and outcomes[0]["ok"]
    assert posts[1]["gpus"][1]["limit_watts"] == 400.0 and notes == ["power cap 1: apply done"]


# -- NVML ---------------------------------------------------------------------------------


class NVMLError(Exception):
    pass


class NVMLError_NoPermission(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class FakeNvml:
    """pynvml's power calls, in mW, on two GPUs; GPU 1 lacks limit constraints."""

    NVMLError = NVMLError

    def __init__(self, permitted: bool = True) -> None:
        self.limit_mw = [700_000, 700_000]
        self.permitted = permitted

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, h: int) -> bytes:
        return f"GPU-{h}".encode()

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 512_345

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:
        return self.limit_mw[h]

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return self.limit_mw[h]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: int) -> int:
        return 700_000

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: int) -> tuple[int, int]:
        if h == 1:
            raise NVMLError_NotSupported()
        return (200_000, 700_000)

    def nvmlDeviceSetPowerManagementLimit(self, h: int, mw: int) -> None:
        if not self.permitted:
            raise NVMLError_NoPermission("Insufficient Permissions")
        self.limit_mw[h] = mw


def test_nvml_reads_draw_and_limits() -> None:
    g0, g1 = NvmlPower(FakeNvml()).read_power()
    assert (g0.power_watts, g0.limit_watts, g0.default_limit_watts) == (512.345, 700.0, 700.0)
    assert (g0.min_limit_watts, g0.max_limit_watts) == (200.0, 700.0)
    assert g1.min_limit_watts is None and g1.max_limit_watts is None and g1.uuid == "GPU-1"


def test_nvml_sets_and_reads_back_or_reports_no_permission() -> None:
    nv = FakeNvml()
    assert NvmlPower(nv).set_limit(0, 312.5) == 312.5 and nv.limit_mw[0] == 312_500
    with pytest.raises(PowerError, match="Insufficient Permissions"):
        NvmlPower(FakeNvml(permitted=False)).set_limit(0, 300)


def test_the_device_checks_power_part_on_a_fake_nvml() -> None:
    """benchmarks/gpu_power.py as a lent GPU machine runs it, on the fake: every limit it
    sets is restored, and computectl's loop records the cap applied then reverted."""
    from benchmarks.gpu_power import power_part

    nv = FakeNvml()
    out = power_part(NvmlPower(nv), cap=True)
    assert out["gpus"][0]["power_watts"] == 512.345 and out["bmc"]["watts"] is None
    assert out["nvml_cap"]["apply"]["ok"] and out["nvml_cap"]["read_back"]["limit"] == 560.0
    assert out["nvml_cap"]["after_revert"] == 700.0
    ctl = out["computectl_cap"]
    assert ctl["applied"]["state"] == "applied" and ctl["applied"]["after"] == {"0": 560.0}
    assert ctl["reverted"]["state"] == "reverted" and ctl["reverted"]["after"] == {"0": 700.0}
    assert nv.limit_mw == [700_000, 700_000]
    refused = power_part(NvmlPower(FakeNvml(permitted=False)), cap=True)
    assert not refused["nvml_cap"]["apply"]["ok"]
    assert "Insufficient Permissions" in refused["nvml_cap"]["apply"]["detail"]
    assert refused["computectl_cap"]["applied"]["state"] == "failed"
