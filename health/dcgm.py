"""NVIDIA DCGM diagnostics (``dcgmi diag -r <level> -j``) as one ``dcgm_diag`` check result.

Where DCGM is installed its diagnostic is the vendor's own verdict on the
GPUs, so burn-in folds it in. The JSON has two shapes:

- DCGM 3.x: ``{"DCGM GPU Diagnostic": {"test_categories": [{"category", "tests":
  [{"name", "results": [{"gpu_id" | "gpu_ids", "status", "warnings", "info"}]}]}]}}``
- DCGM 4.x: the root key is ``"DCGM Diagnostic"``, each result names its entity
  (``"entity_group": "GPU", "entity_id": 0``) and each test has a
  ``"test_summary": {"status"}``.

Statuses are "Pass", "Fail", "Warn", "Skip" (and "Not Run" in some versions).
Warnings are objects ``{"warning": text, "error_id", "error_category",
"error_severity"}`` (older versions: plain strings).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from health.result import CheckResult, Status, Suite

CHECK_NAME = "dcgm_diag"
CHECK_VERSION = "1"

_ROOT_KEYS = ("DCGM GPU Diagnostic", "DCGM Diagnostic")

# Seconds each level may take (level 1 is seconds, 3 is tens of minutes, 4 hours).
_TIMEOUT_SECONDS = {1: 300.0, 2: 1200.0, 3: 3600.0, 4: 4 * 3600.0}

# The level burn-in runs unless told otherwise. Level 1 checks only the deployment
# (software, persistence, blacklisted drivers); level 2 adds the memory test, PCIe bandwidth
# and the short diagnostic: a couple of minutes that find faults our GEMM/HBM workloads do
# not look for (bad memory cells, a slow PCIe link to the host). Level 3's half hour of
# stress overlaps what our burn-in already does; a tranche's acceptance asks for it.
DEFAULT_LEVEL = 2
# The node check's setting, read from the environment by `python -m health` (which has no
# settings file) and from [node_check] dcgm_level by computectl. 0: do not run DCGM.
LEVEL_ENV = "COMPUTECTL_NODE_CHECK__DCGM_LEVEL"


class DcgmError(ValueError):
    """The output is not a DCGM diagnostic document."""


@dataclass(frozen=True, slots=True)
class TestOutcome:
    category: str
    test: str
    status: str  # lower case: pass, fail, warn, skip, not run
    gpus: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _gpu_ids(result: Mapping[str, Any]) -> tuple[int, ...]:
    if "entity_id" in result:
        if str(result.get("entity_group", "GPU")).upper() != "GPU":
            return ()
        raw: Any = result["entity_id"]
    else:
        raw = result.get("gpu_id", result.get("gpu_ids", ""))
    items = raw if isinstance(raw, list) else str(raw).split(",")
    ids: list[int] = []
    for item in items:
        text = str(item).strip()
        if text.isdigit():
            ids.append(int(text))
    return tuple(ids)


def _messages(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        text = item.get("warning", "") if isinstance(item, Mapping) else item
        text = " ".join(str(text).split())
        if text:
            out.append(text)
    return tuple(out)


def outcomes(doc: Mapping[str, Any]) -> tuple[str, list[TestOutcome]]:
    """(DCGM version or "", every test result) from a parsed ``dcgmi diag -j`` document."""
    root = next((doc[k] for k in _ROOT_KEYS if isinstance(doc.get(k), Mapping)), None)
    if root is None:
        raise DcgmError("not a dcgmi diag document (no 'DCGM GPU Diagnostic' key)")
    error = root.get("runtime_error") or doc.get("runtime_error")
    if error:
        raise DcgmError(f"dcgmi diag did not run: {' '.join(str(error).split())}")
    meta = doc.get("metadata")
    version = str(
        root.get("version") or (meta.get("version") if isinstance(meta, Mapping) else "") or ""
    )
    found: list[TestOutcome] = []
    for cat in root.get("test_categories") or []:
        category = str(cat.get("category", ""))
        for test in cat.get("tests") or []:
            name = str(test.get("name", "?"))
            results: Sequence[Mapping[str, Any]] = test.get("results") or []
            if not results and isinstance(test.get("test_summary"), Mapping):
                results = [test["test_summary"]]
            for r in results:
                found.append(
                    TestOutcome(
                        category=category,
                        test=name,
                        status=str(r.get("status", "")).strip().lower(),
                        gpus=_gpu_ids(r),
                        warnings=_messages(r.get("warnings")),
                    )
                )
    return version, found


def diag_result(
    doc: Mapping[str, Any],
    node: str,
    at: datetime,
    level: int = 1,
    suite: Suite = Suite.BURNIN,
) -> CheckResult:
    """The ``dcgm_diag`` verdict: fail lists failed tests with their GPUs and warnings."""
    try:
        version, found = outcomes(doc)
    except DcgmError as exc:
        return _result(node, at, suite, Status.WARN, str(exc), {"level": level})
    failed = [o for o in found if o.status == "fail"]
    warned = [o for o in found if o.status == "warn"]
    ran = [o for o in found if o.status in ("pass", "fail", "warn")]
    values: dict[str, float | int | str | bool] = {
        "level": level,
        "dcgm_version": version,
        "results": len(found),
        "results_failed": len(failed),
        "results_warned": len(warned),
        "results_skipped": len(found) - len(ran),
    }
    if failed:
        return _result(
            node,
            at,
            suite,
            Status.FAIL,
            _describe(failed),
            values,
            gpus=tuple(sorted({g for o in failed for g in o.gpus})),
        )
    if warned:
        return _result(node, at, suite, Status.WARN, _describe(warned), values)
    if not ran:
        return _result(node, at, suite, Status.WARN, "no DCGM test ran (all skipped)", values)
    return _result(node, at, suite, Status.PASS, "", values)


def _describe(items: Sequence[TestOutcome]) -> str:
    """One clause per failed test, its GPUs merged: "GPU Memory on GPU 1,3: <warning>"."""
    merged: dict[str, tuple[set[int], list[str]]] = {}
    for o in items:
        gpus, warnings = merged.setdefault(o.test, (set(), []))
        gpus.update(o.gpus)
        warnings.extend(w for w in o.warnings if w not in warnings)
    parts: list[str] = []
    for test, (gpus, warnings) in merged.items():
        where = f" on GPU {','.join(map(str, sorted(gpus)))}" if gpus else ""
        why = f": {' | '.join(warnings)}" if warnings else ""
        parts.append(f"{test}{where}{why}")
    return "; ".join(parts)


def _result(
    node: str,
    at: datetime,
    suite: Suite,
    status: Status,
    evidence: str,
    values: Mapping[str, float | int | str | bool],
    gpus: tuple[int, ...] = (),
) -> CheckResult:
    return CheckResult(
        node=node,
        check=CHECK_NAME,
        version=CHECK_VERSION,
        status=status,
        at=at,
        suite=suite,
        evidence=evidence,
        values=dict(values),
        gpus=gpus,
    )


def parse_output(text: str) -> dict[str, Any]:
    """The JSON document in dcgmi's stdout (which may carry lines before or after it)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise DcgmError("no JSON in dcgmi output")
    try:
        doc = json.loads(text[start : end + 1])
    except ValueError as exc:
        raise DcgmError(f"dcgmi output is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DcgmError("dcgmi output is not a JSON object")
    return doc


Runner = Callable[[list[str], float], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, errors="replace"
    )


def run_dcgm_diag(
    node: str,
    level: int = 1,
    *,
    suite: Suite = Suite.BURNIN,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = _run,
    timeout_seconds: float | None = None,
) -> CheckResult | None:
    """Run ``dcgmi diag -r <level> -j``; None where dcgmi is not installed.

    dcgmi exits non-zero when a test fails yet still prints the JSON, so the
    document decides; only output that is not a document (no host engine,
    a timeout) is reported as the diagnostic not having run, a warning.
    """
    if level not in _TIMEOUT_SECONDS:
        raise ValueError(f"DCGM diag level must be 1 to 4, not {level}")
    exe = which("dcgmi")
    if exe is None:
        return None
    at = datetime.now(UTC)
    timeout = timeout_seconds or _TIMEOUT_SECONDS[level]
    try:
        proc = run([exe, "diag", "-r", str(level), "-j"], timeout)
    except subprocess.TimeoutExpired:
        return _result(
            node, at, suite, Status.WARN, f"dcgmi diag -r {level} ran over {timeout:.0f} s", {}
        )
    except OSError as exc:
        return _result(node, at, suite, Status.WARN, f"dcgmi could not start: {exc}", {})
    try:
        doc = parse_output(proc.stdout)
    except DcgmError as exc:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        why = tail[-1] if tail else f"exit status {proc.returncode}"
        return _result(node, at, suite, Status.WARN, f"dcgmi diag did not run: {why} ({exc})", {})
    return diag_result(doc, node, at, level, suite)


def level_from_env(environ: Mapping[str, str]) -> int:
    """The DCGM level the environment asks for (DEFAULT_LEVEL where unset)."""
    raw = environ.get(LEVEL_ENV, "").strip()
    if not raw:
        return DEFAULT_LEVEL
    if raw not in ("0", "1", "2", "3", "4"):
        raise ValueError(f"{LEVEL_ENV} must be 0 (off) to 4, not {raw[:20]!a}")
    return int(raw)


def burnin_diag(
    node: str,
    level: int,
    *,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = _run,
) -> CheckResult:
    """The burn-in's ``dcgm_diag`` result. Where DCGM is off (level 0) or not installed the
    diagnostic did not run: that is no evidence against the node, so the result passes,
    says it was skipped and carries ``ran`` False (a WARN on every node without DCGM would
    only teach operators to ignore warnings). Installed but unable to run (no host engine,
    a timeout) it warns: someone should look, but the node is not judged by it."""
    at = datetime.now(UTC)
    if level == 0:
        why = f"skipped: DCGM diagnostics are off ({LEVEL_ENV}=0)"
        return _result(node, at, Suite.BURNIN, Status.PASS, why, {"level": 0, "ran": False})
    result = run_dcgm_diag(node, level, which=which, run=run)
    if result is None:
        why = "skipped: dcgmi is not installed on this node"
        return _result(node, at, Suite.BURNIN, Status.PASS, why, {"level": level, "ran": False})
    ran = result.status is not Status.WARN or "results" in result.values
    return CheckResult(
        node=result.node,
        check=result.check,
        version=result.version,
        status=result.status,
        at=result.at,
        suite=result.suite,
        fatal=result.fatal,
        evidence=result.evidence,
        values={**result.values, "level": level, "ran": ran},
        gpus=result.gpus,
    )
