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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from health import node_check_formats as formats
from health.checks.sdc import CHECK_NAME as SDC_CHECK
from health.checks.sdc import ReferenceLookup, SdcCheck
from health.dcgm import burnin_diag, level_from_env
from health.floor_judging import node_verdict
from health.floors import Floors, load_floors
from health.models import expected_nvlinks
from health.node_check_formats import exit_code, format_json, format_prom, format_text
from health.node_token import TokenFileError, node_token
from health.probe import ActiveProbe
from health.reporting import (
    ReportError,
    fetch_expectation,
    fetch_learned_floors,
    fetch_sdc_reference,
    report,
)
from health.result import CheckResult, Status, Suite, Value
from health.runner import run_burn_in, run_passive
from health.telemetry import NodeExpectation, TelemetrySource, TelemetrySourceError
from health.thresholds import Thresholds

EXIT_OK, EXIT_FAILED, EXIT_FATAL = formats.EXIT_OK, formats.EXIT_FAILED, formats.EXIT_FATAL
EXIT_USAGE = 2
EXIT_REPORT_FAILED = 4

SUITES = ("passive", "burnin", "all")
# The [power] settings' own variables, read here too: `python -m health` has no settings.
IPMITOOL_ON_ENV = "COMPUTECTL_POWER__IPMITOOL"
IPMITOOL_PATH_ENV = "COMPUTECTL_POWER__IPMITOOL_PATH"
# A GPU this busy is running someone's work: no burn-in on it.
BUSY_UTILISATION = 0.05
# Software stacks whose SDC checksum a node remembers (an upgrade and its rollback fit).
SDC_STACKS_KEPT = 8


class NodeCheckError(Exception):
    """A usage or environment problem: nothing was checked."""


@dataclass(frozen=True)
class NodeState:
    """What the node check remembers between runs (XID cursor, counters that must grow,
    the last passing SDC checksum per software stack key)."""

    last_run: datetime | None
    previous: Mapping[str, Mapping[str, Value]]
    sdc: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> NodeState:
        if path is None or not path.exists():
            return cls(None, {})
        try:
            raw = json.loads(path.read_text())
            last = datetime.fromisoformat(raw["last_run"]) if raw.get("last_run") else None
            sdc = {str(k): str(v) for k, v in raw.get("sdc", {}).items()}
            return cls(last, {k: dict(v) for k, v in raw.get("previous", {}).items()}, sdc)
        except (OSError, ValueError, KeyError, TypeError):
            return cls(None, {})  # a damaged state file only costs one cursor

    def save(self, path: Path | None, results: Sequence[CheckResult]) -> None:
        if path is None:
            return
        previous = {**self.previous, **{r.check: dict(r.values) for r in results}}
        data = {
            "last_run": max((r.at for r in results), default=datetime.now(UTC)).isoformat(),
            "previous": previous,
            "sdc": sdc_memory(self.sdc, results),
        }
        atomic_write(path, json.dumps(data))


def sdc_memory(known: Mapping[str, str], results: Sequence[CheckResult]) -> dict[str, str]:
    """The SDC checksums to remember: a passing run's, under its stack key (a failing one
    is never learnt as the right answer); the newest SDC_STACKS_KEPT stacks."""
    out = dict(known)
    for r in results:
        stack, checksum = r.values.get("stack"), r.values.get("checksum")
        if r.check == SDC_CHECK and r.status is Status.PASS and stack and checksum:
            out.pop(str(stack), None)
            out[str(stack)] = str(checksum)
    return dict(list(out.items())[-SDC_STACKS_KEPT:])


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
    *,
    dcgm: Callable[[], CheckResult] | None = None,
    sdc: SdcCheck | None = None,
) -> list[CheckResult]:
    """Run ``suite``; burn-in is refused on busy GPUs unless ``allow_busy``. ``dcgm`` and
    ``sdc``: the burn-in's DCGM diagnostic and SDC check (health/runner.py)."""
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
        results += run_burn_in(snap, expectation, thresholds, probe(), floors, dcgm=dcgm, sdc=sdc)
    return results


def worst_fatal(results: Sequence[CheckResult]) -> CheckResult | None:
    return next((r for r in results if r.fatal), None)


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
    # Burn-in: `dcgmi diag -r LEVEL` where DCGM is installed (0: off); None: from
    # $COMPUTECTL_NODE_CHECK__DCGM_LEVEL, else health.dcgm.DEFAULT_LEVEL.
    dcgm_level: int | None = None


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
        dcgm, sdc = burnin_parts(req, state, token)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE
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
                dcgm=dcgm,
                sdc=sdc,
            )
        )
    except NodeCheckError as exc:
        err(str(exc))
        return EXIT_USAGE
    if req.report_url:
        # The fleet's learned floors, so the node's exit code is the control plane's verdict.
        url, model = req.report_url, expectation.gpu_model
        results = node_verdict(
            model, results, floors, lambda m, s: fetch_learned_floors(url, m, s, token)
        )
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


def burnin_parts(
    req: CheckRequest, state: NodeState, token: str | None
) -> tuple[Callable[[], CheckResult], SdcCheck]:
    """The burn-in's DCGM diagnostic at the asked level, and the SDC check with this node's
    memory and (reporting to a control plane) the fleet's reference."""
    level = req.dcgm_level if req.dcgm_level is not None else level_from_env(os.environ)
    if not 0 <= level <= 4:
        raise ValueError(f"the DCGM level must be 0 (off) to 4, not {level}")
    url = req.report_url
    reference: ReferenceLookup | None = None
    if url is not None:
        reference = lambda model, stack: fetch_sdc_reference(url, model, stack, token)  # noqa: E731
    return (lambda: burnin_diag(req.node, level)), SdcCheck(state.sdc, reference)


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
