"""`computectl provision`: a playbook of playbooks/ run through ansible-runner.

The request is checked before anything runs (a playbook outside playbooks/, a missing
inventory, a limit that is not a host pattern: one line each). The run's events become one
progress line per host and task; its stats, a summary per host. Artifacts go to
``<data_dir>/provision/artifacts/<run id>``, the last `KEEP_RUNS` runs kept (ansible-runner's
rotation).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compute.errors import InvalidInput
from health.inputs import printable

# The checkout's playbooks/ (computectl runs from a checkout or an editable install).
DEFAULT_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
KEEP_RUNS = 20
_SUFFIXES = (".yml", ".yaml")
_MAX_NAME = 255
# Ansible's host patterns: names, groups, ':' ',' '!' '&' '*' and ranges. No '@' (a file of
# hosts), no '~' (a regular expression): a limit names hosts, nothing else.
_LIMIT = re.compile(r"[A-Za-z0-9_.:,!&*\[\]\-]{1,1000}")


@dataclass(frozen=True)
class Request:
    playbooks: Path
    playbook: Path  # relative to playbooks
    inventory: Path | None
    limit: str | None = None
    check: bool = False
    diff: bool = False

    def cmdline(self) -> list[str]:
        return [*(["--check"] if self.check else []), *(["--diff"] if self.diff else [])]


@dataclass(frozen=True)
class Progress:
    """One host's result of one task (or a play's start, host "")."""

    status: str  # play, ok, changed, failed, skipped, unreachable
    host: str
    task: str
    message: str = ""


@dataclass
class Outcome:
    run_id: str
    rc: int
    status: str  # successful, failed, timeout, canceled
    artifacts: Path
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s["failed"] or s["unreachable"])

    def detail(self) -> dict[str, Any]:
        return {"run": self.run_id, "rc": self.rc, "status": self.status, "hosts": self.hosts}


def playbooks_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def request(
    playbooks: Path,
    playbook: str,
    inventory: Path | None,
    limit: str | None,
    check: bool,
    diff: bool,
) -> Request:
    """The request checked: each refusal is one line (InvalidInput)."""
    root = playbooks.resolve()
    if not root.is_dir():
        raise InvalidInput(
            f"playbooks: {printable(str(playbooks))} is not a directory (give --playbooks, "
            "a checkout's playbooks/)"
        )
    name = playbook.strip()
    if not name or len(name) > _MAX_NAME or printable(name) != name:
        raise InvalidInput("playbook: give the name of a playbook of playbooks/, e.g. site.yml")
    known = ", ".join(playbooks_in(root))
    refused = InvalidInput(f"playbook: {name!r} is not a playbook of {root} ({known})")
    try:
        candidate = Path(name)
        if candidate.suffix not in _SUFFIXES:
            candidate = candidate.with_name(candidate.name + ".yml")
        resolved = (root / candidate).resolve()  # an absolute candidate stays itself
        if resolved.parent != root or not resolved.is_file():
            raise refused
    except (OSError, ValueError):  # "/", too long a name, a loop of links
        raise refused from None
    if inventory is not None and not inventory.exists():
        raise InvalidInput(f"inventory: {printable(str(inventory))} does not exist")
    if limit is not None and (not _LIMIT.fullmatch(limit) or limit.startswith("-")):
        raise InvalidInput(
            f"limit: {printable(limit)[:80]!r} is not a host pattern (names, groups, "
            "':' ',' '!' '&' '*')"
        )
    return Request(
        playbooks=root,
        playbook=resolved.relative_to(root),
        inventory=inventory.resolve() if inventory is not None else None,
        limit=limit,
        check=check,
        diff=diff,
    )


def progress_of(event: Mapping[str, Any]) -> Progress | None:
    """The line an ansible-runner event makes, or None for events shown by none."""
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind == "playbook_on_play_start":
        return Progress("play", "", str(data.get("play", "")))
    status = {
        "runner_on_ok": "ok",
        "runner_on_failed": "failed",
        "runner_on_skipped": "skipped",
        "runner_on_unreachable": "unreachable",
    }.get(kind)
    if status is None:
        return None
    res = data.get("res") or {}
    if status == "ok" and res.get("changed"):
        status = "changed"
    if status == "failed" and data.get("ignore_errors"):
        status = "ok"
    message = ""
    if status in ("failed", "unreachable"):
        message = str(res.get("msg") or res.get("stderr") or "")[:500]
    return Progress(status, str(data.get("host", "")), str(data.get("task", "")), message)


def host_summary(stats: Mapping[str, Mapping[str, int]] | None) -> dict[str, dict[str, int]]:
    """ansible's play recap per host: ok, changed, failed, unreachable, skipped."""
    stats = stats or {}
    hosts: set[str] = set()
    for counts in stats.values():
        hosts.update(counts)
    keys = {
        "ok": "ok",
        "changed": "changed",
        "failed": "failures",
        "unreachable": "dark",
        "skipped": "skipped",
    }
    return {
        h: {k: int((stats.get(src) or {}).get(h, 0)) for k, src in keys.items()}
        for h in sorted(hosts)
    }


def run_id(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def run(
    req: Request,
    artifacts_root: Path,
    on_progress: Callable[[Progress], None],
    keep: int = KEEP_RUNS,
    now: datetime | None = None,
) -> Outcome:
    """Run the playbook; artifacts under ``artifacts_root``, the last ``keep`` runs kept."""
    import ansible_runner  # type: ignore[import-untyped]

    ident = run_id(now or datetime.now(UTC))
    artifacts_root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def handler(event: dict[str, Any]) -> bool:
        line = progress_of(event)
        if line is not None:
            on_progress(line)
        return True  # keep the event in the artifacts

    # ansible-playbook is beside this interpreter (a virtualenv), not necessarily on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    kwargs: dict[str, Any] = {
        "private_data_dir": str(artifacts_root),
        "project_dir": str(req.playbooks),
        "playbook": str(req.playbook),
        "ident": ident,
        "rotate_artifacts": keep,
        "quiet": True,
        "event_handler": handler,
        "envvars": {
            "PATH": path,
            "ANSIBLE_CONFIG": str(req.playbooks / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
        },
    }
    if req.inventory is not None:
        kwargs["inventory"] = str(req.inventory)
    if req.limit is not None:
        kwargs["limit"] = req.limit
    if req.cmdline():
        kwargs["cmdline"] = " ".join(req.cmdline())
    result = ansible_runner.run(**kwargs)
    return Outcome(
        run_id=ident,
        rc=int(result.rc),
        status=str(result.status),
        artifacts=artifacts_root / "artifacts" / ident,
        hosts=host_summary(result.stats),
    )
