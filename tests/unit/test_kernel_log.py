"""XID lines from the kernel log in the formats journalctl, dmesg and syslog really write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from health.kernel_log import (
    KernelLog,
    LogSource,
    LogUnavailable,
    kern_log_reader,
    normalise_bus_id,
)

BUS = {"0000:18:00": 0, "0000:3b:00": 2, "0000:9a:00": 4}
NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)

# journalctl -k -o short-iso-precise (systemd 255 writes the offset with a colon, older ones without)
JOURNAL = [
    "2026-11-26T03:55:10.118420+00:00 gpu-001 kernel: nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver",
    "2026-11-26T04:01:02.123456+00:00 gpu-001 kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.",
    "2026-11-26T05:02:03.000001+0100 gpu-001 kernel: NVRM: Xid (PCI:0000:9a:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.",
    "2026-11-26T04:03:00.000000+00:00 gpu-001 kernel: NVRM: Xid (PCI:0000:18:00): 13, pid=28121, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address",
]

# dmesg --time-format iso (comma before the fraction)
DMESG = [
    "2026-11-26T04:01:02,123456+00:00 NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.",
    "2026-11-26T04:05:00,000000+00:00 NVRM: GPU at PCI:0000:3b:00: GPU-5f3c1e2a-0000-4000-8000-000000000002",
    "2026-11-26T04:06:00,500000+00:00 NVRM: Xid (PCI:0000:af:00): 94, pid=4411, name=python3, Contained: SM (0x1). RST: No, D-RST: No",
]


def log_of(lines: list[str]) -> KernelLog:
    return KernelLog([LogSource("test", lambda since: lines)])


def test_journalctl_lines_with_their_gpu() -> None:
    events, err = log_of(JOURNAL).xid_events(None, BUS, NOW)
    assert err is None
    assert [(e.code, e.gpu_index, e.pci_bus_id) for e in events] == [
        (79, 2, "0000:3b:00"),
        (48, 4, "0000:9a:00"),
        (13, 0, "0000:18:00"),
    ]
    assert events[1].at == datetime(2026, 11, 26, 4, 2, 3, 1, tzinfo=UTC)
    assert events[0].message == "pid=0, GPU has fallen off the bus."


def test_since_drops_older_events() -> None:
    since = datetime(2026, 11, 26, 4, 2, tzinfo=UTC)
    events, _ = log_of(JOURNAL).xid_events(since, BUS, NOW)
    assert [e.code for e in events] == [48, 13]


def test_dmesg_iso_lines_and_unknown_bus() -> None:
    since = datetime(2026, 11, 26, 5, 0, tzinfo=timezone(timedelta(hours=1)))
    events, err = log_of(DMESG).xid_events(since, BUS, NOW)
    assert err is None
    assert [(e.code, e.gpu_index) for e in events] == [(79, 2), (94, None)]


def test_falls_back_to_the_next_readable_source() -> None:
    def no_journal(since: object) -> list[str]:
        raise LogUnavailable("journalctl: No journal files were found.")

    log = KernelLog([LogSource("journalctl", no_journal), LogSource("dmesg", lambda s: DMESG)])
    events, err = log.xid_events(None, BUS, NOW)
    assert err is None and len(events) == 2


def test_no_readable_source_says_why() -> None:
    def denied(since: object) -> list[str]:
        raise LogUnavailable("dmesg: read kernel buffer failed: Operation not permitted")

    def missing(since: object) -> list[str]:
        raise LogUnavailable("journalctl not installed")

    events, err = KernelLog(
        [LogSource("journalctl", missing), LogSource("dmesg", denied)]
    ).xid_events(None, BUS, NOW)
    assert events == ()
    assert err == (
        "journalctl not installed; dmesg: read kernel buffer failed: Operation not permitted"
    )


def test_kern_log_file_classic_syslog_format(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    path.write_text(
        "Nov 26 04:01:02 gpu-001 kernel: [ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, "
        "pid=0, GPU has fallen off the bus.\n"
        "Nov 26 04:01:03 gpu-001 kernel: [ 1234.600000] nvidia 0000:3b:00.0: unrecoverable\n"
    )
    events, err = KernelLog([LogSource("kern.log", kern_log_reader(path))]).xid_events(
        None, BUS, NOW
    )
    assert err is None
    assert [(e.code, e.gpu_index) for e in events] == [(79, 2)]
    assert events[0].at.tzinfo is not None


def test_missing_kern_log_is_unavailable(tmp_path: Path) -> None:
    log = KernelLog([LogSource("kern.log", kern_log_reader(tmp_path / "kern.log"))])
    events, err = log.xid_events(None, BUS, NOW)
    assert events == () and err is not None and "kern.log" in err


def test_bus_id_forms() -> None:
    assert normalise_bus_id("00000000:3B:00.0") == "0000:3b:00"
    assert normalise_bus_id("0000:3b:00") == "0000:3b:00"
    assert normalise_bus_id("PCI:0000:3B:00.0") == "0000:3b:00"
    assert normalise_bus_id("3b:00.0") == "0000:3b:00"
