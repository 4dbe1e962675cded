"""XID reports from the local kernel log: journald, else dmesg, else /var/log/kern.log.

A node check must never report "no XIDs" when it simply could not read the
log (a non-root user sees an empty journal, dmesg_restrict hides the ring
buffer, a container has neither). So each source says whether it could be
read, and when none could, the reasons travel in ``NodeSnapshot.xid_source_error``
and the XID check warns instead of passing.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from health.telemetry import XidEvent
from health.xid import parse_xid_line

# Seconds one log command may take before the next source is tried.
_COMMAND_TIMEOUT_SECONDS = 15.0

KERN_LOG = Path("/var/log/kern.log")


class LogUnavailable(Exception):
    """A source cannot be read; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class LogSource:
    """One place kernel lines come from. ``read`` raises LogUnavailable when it cannot."""

    name: str
    read: Callable[[datetime | None], Sequence[str]]


def normalise_bus_id(bus_id: str) -> str:
    """Any PCI address form to the kernel log's ``0000:3b:00`` (domain:bus:device).

    NVML says ``00000000:3B:00.0`` (8-digit domain, upper case, function);
    the driver's XID lines say ``0000:3b:00``.
    """
    text = bus_id.strip().lower()
    if text.startswith("pci:"):
        text = text[4:]
    parts = text.split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    if len(parts) != 3:
        return text
    domain, bus, devfn = parts
    device = devfn.split(".")[0]
    return f"{domain[-4:].zfill(4)}:{bus.zfill(2)}:{device.zfill(2)}"


def _exec(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_SECONDS,
            check=False,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise LogUnavailable(f"{argv[0]} not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LogUnavailable(f"{argv[0]} took over {_COMMAND_TIMEOUT_SECONDS:.0f} s") from exc
    except OSError as exc:
        raise LogUnavailable(f"{argv[0]}: {exc}") from exc


def _run(argv: list[str]) -> str:
    proc = _exec(argv)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise LogUnavailable(f"{argv[0]}: {why}")
    return proc.stdout


# journalctl exits 0 yet shows nothing useful in these cases (a user outside the
# systemd-journal/adm groups sees only their own entries; a container has no journal).
_JOURNAL_BLIND = (
    "insufficient permissions",
    "not seeing messages from other users",
    "no journal files were found",
    "no journal files were opened",
)


def read_journalctl(since: datetime | None) -> Sequence[str]:
    argv = ["journalctl", "-k", "-o", "short-iso-precise", "--no-pager", "-q"]
    if since is not None:
        # journalctl reads a plain "YYYY-MM-DD HH:MM:SS" as local time; floor to the
        # second (the exact bound is applied again after parsing).
        argv += ["--since", _aware(since).astimezone().strftime("%Y-%m-%d %H:%M:%S")]
    proc = _exec(argv)
    chatter = (proc.stderr + "\n" + proc.stdout[:2000]).lower()
    blind = next((b for b in _JOURNAL_BLIND if b in chatter), None)
    if proc.returncode != 0 or blind is not None:
        why = blind or (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise LogUnavailable(f"journalctl: {why}")
    return proc.stdout.splitlines()


def read_dmesg(since: datetime | None) -> Sequence[str]:
    # Needs CAP_SYSLOG where kernel.dmesg_restrict=1; the ring buffer also wraps,
    # which is why journald comes first.
    return _run(["dmesg", "--time-format", "iso"]).splitlines()


def kern_log_reader(path: Path = KERN_LOG) -> Callable[[datetime | None], Sequence[str]]:
    def read(since: datetime | None) -> Sequence[str]:
        try:
            with path.open(errors="replace") as f:
                return f.read().splitlines()
        except OSError as exc:
            raise LogUnavailable(f"{path}: {exc.strerror or exc}") from exc

    return read


def default_sources() -> tuple[LogSource, ...]:
    return (
        LogSource("journalctl", read_journalctl),
        LogSource("dmesg", read_dmesg),
        LogSource(str(KERN_LOG), kern_log_reader()),
    )


# Classic syslog prefix of /var/log/kern.log: "Nov 26 04:09:29 host kernel: ...".
_SYSLOG_PREFIX = re.compile(r"^(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)\s")


def _syslog_time(line: str, now: datetime) -> datetime | None:
    """The local time of a classic syslog line, whose year is not written down."""
    m = _SYSLOG_PREFIX.match(line)
    if m is None:
        return None
    local_now = now.astimezone()
    try:
        parsed = datetime.strptime(
            f"{local_now.year} {m.group('mon')} {m.group('day')} {m.group('hms')}",
            "%Y %b %d %H:%M:%S",
        )
    except ValueError:
        return None
    at = parsed.replace(tzinfo=local_now.tzinfo)
    # A December line read in January belongs to last year.
    if at > local_now + timedelta(days=1):
        at = at.replace(year=at.year - 1)
    return at


def _aware(at: datetime) -> datetime:
    """Naive times in logs and callers are local time."""
    return at if at.tzinfo is not None else at.astimezone()


class KernelLog:
    """Reads ``NVRM: Xid`` lines since a time from the first readable source."""

    def __init__(self, sources: Sequence[LogSource] | None = None) -> None:
        self._sources = tuple(sources) if sources is not None else default_sources()

    def xid_events(
        self,
        since: datetime | None,
        bus_to_index: Mapping[str, int],
        now: datetime | None = None,
    ) -> tuple[tuple[XidEvent, ...], str | None]:
        """The XID events at or after ``since``, and None; or (), and why no source was read."""
        now = now or datetime.now(UTC)
        why: list[str] = []
        for source in self._sources:
            try:
                lines = source.read(since)
            except LogUnavailable as exc:
                why.append(str(exc))
                continue
            return self._parse(lines, since, bus_to_index, now), None
        return (), "; ".join(why) or "no kernel log source configured"

    @staticmethod
    def _parse(
        lines: Sequence[str],
        since: datetime | None,
        bus_to_index: Mapping[str, int],
        now: datetime,
    ) -> tuple[XidEvent, ...]:
        bound = _aware(since) if since is not None else None
        events: list[XidEvent] = []
        for line in lines:
            parsed = parse_xid_line(line)
            if parsed is None:
                continue
            at = parsed.at or _syslog_time(line, now)
            if at is not None:
                at = _aware(at)
                if bound is not None and at < bound:
                    continue
            bus = normalise_bus_id(parsed.pci_bus_id)
            events.append(
                XidEvent(
                    # A line without a readable time is kept (never drop an XID)
                    # and dated now.
                    at=at.astimezone(UTC) if at is not None else now,
                    pci_bus_id=bus,
                    code=parsed.code,
                    message=parsed.message,
                    gpu_index=bus_to_index.get(bus),
                )
            )
        return tuple(events)
