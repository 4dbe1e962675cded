"""The node check: run a suite on this node, print it, keep it for node_exporter, report it.

Runs from cron, as Slurm's HealthCheckProgram, or in a Kubernetes DaemonSet/Job.
Exit codes (documented in docs/node-check.md):

    0  no check failed (warnings allowed)
    1  at least one check failed, none fatally
    3  a fatal failure: the node must not take work
    2  usage or configuration error (nothing was checked)
    4  the results could not be reported to the control plane (they were still printed)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from health.floors import Floors, load_floors
from health.models import expected_nvlinks
from health.node_token import TokenFileError, node_token
from health.probe import ActiveProbe
from health.reporting import ReportError, fetch_expectation, report
from health.result import CheckResult, Status, Suite, Value
from health.runner import run_burn_in, run_passive
from health.telemetry import NodeExpectation, TelemetrySource, TelemetrySourceError
from health.thresholds import Thresholds

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL = 3
EXIT_REPORT_FAILED = 4

SUITES = ("passive", "burnin", "all")
# The [power] settings' own variables, read here too: `python -m health` has no settings.
IPMITOOL_ON_ENV = "COMPUTECTL_POWER__IPMITOOL"
IPMITOOL_PATH_ENV = "COMPUTECTL_POWER__IPMITOOL_PATH"
# A GPU this busy is running someone's work: no burn-in on it.
BUSY_UTILISATION = 0.05


class NodeCheckError(Exception):
    """A usage or environment problem: nothing was checked."""


@dataclass(frozen=True)
class NodeState:
    """What the node check remembers between runs (XID cursor, counters that must grow)."""

    last_run: datetime | None
    previous: Mapping[str, Mapping[str, Value]]

    @classmethod
    def load(cls, path: Path | None) -> NodeState:
        if path is None or not path.exists():
            return cls(None, {})
        try:
            raw = json.loads(path.read_text())
            last = datetime.fromisoformat(raw["last_run"]) if raw.get("last_run") else None
            return cls(last, {k: dict(v) for k, v in raw.get("previous", {}).items()})
        except (OSError, ValueError, KeyError, TypeError):
            return cls(None, {})  # a damaged state file only costs one cursor

    def save(self, path: Path | None, results: Sequence[CheckResult]) -> None:
        if path is None:
            return
        previous = {**self.previous, **{r.check: dict(r.values) for r in results}}
        data = {
            "last_run": max((r.at for r in results), default=datetime.now(UTC)).isoformat(),
            "previous": previous,
        }
        atomic_write(path, json.dumps(data))


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def source_failure(node: str, exc: Exception, suite: Suite = Suite.PASSIVE) -> CheckResult:
    """A node whose GPUs cannot be read at all fails, fatally: it must not take GPU work."""
    return CheckResult(
        node=node,
        check="telemetry",
        version="1",
        status=Status.FAIL,
        at=datetime.now(UTC),
        suite=suite,
        fatal=True,
        evidence=str(exc),
    )


def check_node(
    node: str,
    suite: str,
    source: TelemetrySource,
    expectation: NodeExpectation,
    thresholds: Thresholds,
    state: NodeState,
    probe: Callable[[], ActiveProbe] | None = None,
    floors: Floors | None = None,
    allow_busy: bool = False,
) -> list[CheckResult]:
    """Run ``suite``; burn-in is refused on busy GPUs unless ``allow_busy``."""
    if suite not in SUITES:
        raise NodeCheckError(f"unknown suite {suite!r}; one of {', '.join(SUITES)}")
    try:
        snap = source.snapshot(node, state.last_run)
    except TelemetrySourceError as exc:
        return [source_failure(node, exc)]
    results: list[CheckResult] = []
    if suite in ("passive", "all"):
        results += run_passive(snap, expectation, thresholds, state.previous)
    if suite in ("burnin", "all"):
        busy = [g.index for g in snap.gpus if g.utilisation_ratio >= BUSY_UTILISATION]
        if busy and not allow_busy:
            raise NodeCheckError(
                f"GPUs {','.join(map(str, busy))} are busy: burn-in only runs "
                "on an idle node (use --allow-busy to override)"
            )
        if probe is None:
            raise NodeCheckError("the burn-in suite needs a probe (PyTorch) on this node")
        results += run_burn_in(snap, expectation, thresholds, probe(), floors)
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    if any(r.fatal for r in results):
        return EXIT_FATAL
    if any(r.status is Status.FAIL for r in results):
        return EXIT_FAILED
    return EXIT_OK


def worst_fatal(results: Sequence[CheckResult]) -> CheckResult | None:
    return next((r for r in results if r.fatal), None)


# -- formats --------------------------------------------------------------------------------


def format_text(results: Sequence[CheckResult]) -> str:
    lines = []
    for r in results:
        mark = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}[r.status.value]
        fatal = " (fatal)" if r.fatal else ""
        lines.append(f"{mark} {r.check:<16} {r.suite.value:<8}{fatal} {r.evidence}".rstrip())
    return "\n".join(lines)


def format_json(node: str, results: Sequence[CheckResult], duration: float) -> str:
    return json.dumps(
        {
            "node": node,
            "duration_seconds": round(duration, 4),
            "exit_code": exit_code(results),
            "results": [r.to_dict() for r in results],
        },
        indent=2,
    )


_STATUS_VALUE = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_prom(node: str, results: Sequence[CheckResult], duration: float) -> str:
    """Prometheus text format for node_exporter's textfile collector."""
    out = [
        "# HELP computectl_node_check_status Latest result per check: 0 pass, 1 warn, 2 fail.",
        "# TYPE computectl_node_check_status gauge",
    ]
    for r in results:
        out.append(
            f'computectl_node_check_status{{node="{_label(node)}",check="{_label(r.check)}",'
            f'suite="{r.suite.value}"}} {_STATUS_VALUE[r.status]}'
        )
    out += [
        "# HELP computectl_node_check_fatal Whether the check failed fatally (1) or not (0).",
        "# TYPE computectl_node_check_fatal gauge",
    ]
    for r in results:
        out.append(
            f'computectl_node_check_fatal{{node="{_label(node)}",check="{_label(r.check)}",'
            f'suite="{r.suite.value}"}} {int(r.fatal)}'
        )
    at = max((r.at for r in results), default=datetime.now(UTC))
    out += [
        "# HELP computectl_node_check_timestamp_seconds When the node check last ran.",
        "# TYPE computectl_node_check_timestamp_seconds gauge",
        f'computectl_node_check_timestamp_seconds{{node="{_label(node)}"}} {at.timestamp():.3f}',
        "# HELP computectl_node_check_duration_seconds How long the node check took.",
        "# TYPE computectl_node_check_duration_seconds gauge",
        f'computectl_node_check_duration_seconds{{node="{_label(node)}"}} {duration:.4f}',
    ]
    return "\n".join(out) + "\n"


def timed(fn: Callable[[], list[CheckResult]]) -> tuple[list[CheckResult], float]:
    t0 = time.perf_counter()
    results = fn()
    return results, time.perf_counter() - t0


def local_expectation(
    source: TelemetrySource, node: str, expect_gpus: int | None = None
) -> NodeExpectation:
    """What the node should have when nobody said: ``expect_gpus`` if given, else what is
    visible now (a GPU missing since boot then goes unnoticed: give the count, or --report
    so the control plane's inventory is used)."""
    try:
        snap = source.snapshot(node, None)
        visible, model = len(snap.gpus), (snap.gpus[0].model if snap.gpus else "")
    except TelemetrySourceError:
        visible, model = 1, ""
    count = expect_gpus or max(1, visible)
    return NodeExpectation(
        gpu_count=count, gpu_model=model, nvlinks_per_gpu=expected_nvlinks(model, count)
    )


# -- the one entry: both front ends (`computectl node check`, `python -m health check`) ----------


def default_node() -> str:
    """This node's name as its workload manager knows it: slurmd sets SLURMD_NODENAME (not
    always the host name: several slurmd may share a host); a Kubernetes pod gets
    spec.nodeName as NODE_NAME from the downward API."""
    return (
        os.environ.get("SLURMD_NODENAME")
        or os.environ.get("NODE_NAME")
        or socket.gethostname().split(".")[0]
    )


def default_state_file(data_dir: Path | None, node: str) -> Path:
    """The check's state between runs: in computectl's data directory (the configured one, else
    $COMPUTECTL_DATA_DIR, else $XDG_DATA_HOME/computectl), one file per node name."""
    if data_dir is None:
        env = os.environ.get("COMPUTECTL_DATA_DIR")
        xdg = Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser()
        data_dir = Path(env).expanduser() if env else xdg / "computectl"
    return data_dir / f"node-check-{node}.json"


def torch_probe() -> ActiveProbe:
    """The burn-in probe on a real GPU node (PyTorch is imported only for burn-in)."""
    try:
        from health.burnin.torch_probe import TorchProbe
    except ImportError as exc:
        raise NodeCheckError(f"burn-in needs PyTorch on this node: {exc}") from None
    return TorchProbe()


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """One node check as an operator (or cron, Slurm, a DaemonSet) asked for it."""

    node: str
    state_file: Path
    suite: str = "passive"
    fmt: str = "text"  # text | json | prom
    textfile: Path | None = None
    report_url: str | None = None
    token: str | None = None  # else read from token_file, $COMPUTECTL_NODE_TOKEN or the defaults
    token_file: Path | None = None
    expect_gpus: int | None = None
    allow_busy: bool = False
    # With a report: the BMC's reading through this ipmitool (None: not read), and the
    # node's power posted, caps applied (health/power.py). The environment's [power]
    # ipmitool and ipmitool_path override.
    ipmitool: str | None = "ipmitool"
    power: bool = True


def run(
    req: CheckRequest,
    telemetry: TelemetrySource,
    thresholds: Thresholds,
    *,
    probe: Callable[[], ActiveProbe] | None = torch_probe,
    expectation: NodeExpectation | None = None,
    act: Callable[[list[CheckResult]], str] | None = None,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] = lambda line: print(f"error: {line}", file=sys.stderr),
) -> int:
    """Check, print, write the textfile, act (``act``: Slurm's self-drain, its outcome on
    stderr), report; returns the exit code. ``expectation``: what the node has when the
    source knows (simulated); else the control plane's inventory with --report, else what
    is visible. The node's credential (`health.node_token`) is read only to report."""
    token = req.token
    if req.report_url and token is None:
        try:
            token = node_token(req.token_file)
        except TokenFileError as exc:
            err(str(exc))
            return EXIT_USAGE
    if expectation is None:
        if req.report_url and req.expect_gpus is None:
            expectation = fetch_expectation(req.report_url, req.node, token)
        if expectation is None:
            expectation = local_expectation(telemetry, req.node, req.expect_gpus)
    floors = load_floors().get(expectation.gpu_model)
    state = NodeState.load(req.state_file)
    try:
        results, duration = timed(
            lambda: check_node(
                req.node,
                req.suite,
                telemetry,
                expectation,
                thresholds,
                state,
                probe,
                floors,
                req.allow_busy,
            )
        )
    except NodeCheckError as exc:
        err(str(exc))
        return EXIT_USAGE
    state.save(req.state_file, results)
    out(
        {
            "json": lambda: format_json(req.node, results, duration),
            "prom": lambda: format_prom(req.node, results, duration).rstrip("\n"),
        }.get(req.fmt, lambda: format_text(results))()
    )
    if req.textfile is not None:
        atomic_write(req.textfile, format_prom(req.node, results, duration))
    code = exit_code(results)
    if act is not None:
        print(f"slurm: {act(results)}", file=sys.stderr)
    if req.report_url:
        if req.token is None:
            # A burn-in takes long: the kubelet may have renewed the projected token since.
            with contextlib.suppress(TokenFileError):
                token = node_token(req.token_file)
        try:
            report(req.report_url, req.node, results, token=token)
        except ReportError as exc:
            err(f"report failed: {exc}")
            return code or EXIT_REPORT_FAILED
        if req.power and not power_round(req, telemetry, token, err):
            return code or EXIT_REPORT_FAILED
    return code


def power_round(
    req: CheckRequest, telemetry: TelemetrySource, token: str | None, err: Callable[[str], None]
) -> bool:
    """Post this node's power and apply the caps the control plane answers with (through
    the node agent, health/power.py); False when the post failed. A node whose telemetry
    has no power source (none known) posts nothing."""
    from health.power import PowerError, exchange
    from health.reporting import report_power

    make = getattr(telemetry, "power_source", None)
    if make is None or req.report_url is None:
        return True
    url = req.report_url
    tool = os.environ.get(IPMITOOL_PATH_ENV, req.ipmitool or "") or None
    if os.environ.get(IPMITOOL_ON_ENV, "").strip().lower() in ("false", "0", "off", "no"):
        tool = None
    try:
        _, notes = exchange(
            make(req.node),
            lambda body: report_power(url, req.node, body, token=token),
            tool,
        )
    except ReportError as exc:
        err(f"power report failed: {exc}")
        return False
    except (PowerError, TelemetrySourceError) as exc:
        err(f"power: {exc}")
        return True  # the GPUs cannot be read: the passive checks already said so
    for line in notes:
        print(f"power: {line}", file=sys.stderr)
    return True
