"""DCGM in the burn-in suite, as the node check runs it: a fake `dcgmi` on PATH prints
recorded DCGM 3.x and 4.x documents (with a failing GPU), the level comes from the request
or the environment, and a node without DCGM is not judged by it."""

from __future__ import annotations

import json
import os
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health import node_check as nc
from health.dcgm import LEVEL_ENV, level_from_env
from health.simulated import FleetSpec, SimulatedFleet, SimulatedProbe, SimulatedTelemetry
from health.telemetry import NodeExpectation
from health.thresholds import Thresholds

DATA = Path(__file__).parent / "data"
NODE = "gpu-001"

# DCGM 4.x, level 2: the memory test fails on GPU 2 (as a GPU with bad cells reports it).
DCGM4_R2: dict[str, Any] = {
    "DCGM Diagnostic": {
        "test_categories": [
            {
                "category": "Deployment",
                "tests": [{"name": "software", "test_summary": {"status": "Pass"}}],
            },
            {
                "category": "Hardware",
                "tests": [
                    {
                        "name": "memory",
                        "results": [
                            {"entity_group": "GPU", "entity_id": g, "status": "Pass"}
                            for g in (0, 1, 3, 4, 5, 6, 7)
                        ]
                        + [
                            {
                                "entity_group": "GPU",
                                "entity_id": 2,
                                "status": "Fail",
                                "warnings": [
                                    {
                                        "warning": "Memory test found 3 miscompares on GPU 2",
                                        "error_id": 83,
                                    }
                                ],
                            }
                        ],
                        "test_summary": {"status": "Fail"},
                    }
                ],
            },
        ],
    },
    "metadata": {"version": "4.2.3"},
}


def fake_dcgmi(tmp_path: Path, document: str, code: int = 0) -> Path:
    """A `dcgmi` that records its arguments and prints ``document`` as the real one does
    (a line before the JSON; a failing diagnostic exits non-zero)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    doc = tmp_path / "doc.json"
    doc.write_text(document)
    argv = tmp_path / "argv"
    exe = bin_dir / "dcgmi"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(argv)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        "print('Successfully ran diagnostic for group.')\n"
        f"print(open({str(doc)!r}).read())\n"
        f"sys.exit({code})\n"
    )
    exe.chmod(0o755)
    return argv


def check(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    path: str,
    level: int | None = None,
) -> tuple[int, dict[str, Any], list[str]]:
    monkeypatch.setenv("PATH", path)
    f = SimulatedFleet(FleetSpec(racks=1, nodes_per_rack=1), seed=7, now=1_767_600_000.0)
    f.set_load(NODE, [0.0] * 8)
    access = lambda: nullcontext(f)  # noqa: E731
    n = f.nodes[NODE]
    req = nc.CheckRequest(
        node=NODE,
        state_file=tmp_path / "state.json",
        suite="burnin",
        fmt="json",
        dcgm_level=level,
    )
    out: list[str] = []
    errs: list[str] = []
    code = nc.run(
        req,
        SimulatedTelemetry(access),
        Thresholds(),
        probe=lambda: SimulatedProbe(access, NODE),
        expectation=NodeExpectation(gpu_count=8, gpu_model=n.model),
        out=out.append,
        err=errs.append,
    )
    doc = json.loads(out[0]) if out else {}
    return code, {r["check"]: r for r in doc.get("results", [])}, errs


def no_dcgmi(tmp_path: Path) -> str:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_without_dcgmi_the_diagnostic_is_skipped_not_held_against_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEVEL_ENV, raising=False)
    code, by, _ = check(tmp_path, monkeypatch, path=no_dcgmi(tmp_path))
    r = by["dcgm_diag"]
    assert (r["status"], r["suite"]) == ("pass", "burnin")
    assert r["evidence"] == "skipped: dcgmi is not installed on this node"
    assert r["values"] == {"level": 2, "ran": False}
    assert by["burnin"]["status"] == "pass" and code == nc.EXIT_OK


def test_dcgm3_failure_fails_the_burn_in_at_the_default_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEVEL_ENV, raising=False)
    argv = fake_dcgmi(tmp_path, (DATA / "dcgm_diag_r1.json").read_text(), code=226)
    code, by, _ = check(tmp_path, monkeypatch, path=f"{tmp_path / 'bin'}{os.pathsep}/usr/bin")
    assert shlex.split(argv.read_text()) == ["diag", "-r", "2", "-j"]
    r = by["dcgm_diag"]
    assert r["status"] == "fail" and r["fatal"] is False
    assert r["evidence"].startswith("Page Retirement/Row Remap on GPU 0,1,2,3,4,5,6,7")
    assert (r["values"]["dcgm_version"], r["values"]["ran"]) == ("3.3.9", True)
    assert by["burnin"]["status"] == "fail" and "dcgm_diag: " in by["burnin"]["evidence"]
    assert code == nc.EXIT_FAILED


def test_dcgm4_failing_gpu_at_the_level_the_environment_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEVEL_ENV, "3")
    argv = fake_dcgmi(tmp_path, json.dumps(DCGM4_R2), code=226)
    code, by, _ = check(tmp_path, monkeypatch, path=f"{tmp_path / 'bin'}{os.pathsep}/usr/bin")
    assert shlex.split(argv.read_text()) == ["diag", "-r", "3", "-j"]
    r = by["dcgm_diag"]
    assert (r["status"], r["gpus"]) == ("fail", [2])
    assert r["evidence"] == "memory on GPU 2: Memory test found 3 miscompares on GPU 2"
    assert r["values"]["level"] == 3 and r["values"]["dcgm_version"] == "4.2.3"
    assert by["burnin"]["gpus"] == [2] and code == nc.EXIT_FAILED


def test_the_request_overrides_the_environment_and_0_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEVEL_ENV, "3")
    argv = fake_dcgmi(tmp_path, json.dumps(DCGM4_R2), code=226)
    path = f"{tmp_path / 'bin'}{os.pathsep}/usr/bin"
    _, by, _ = check(tmp_path, monkeypatch, path=path, level=1)
    assert shlex.split(argv.read_text()) == ["diag", "-r", "1", "-j"]
    argv.unlink()
    code, by, _ = check(tmp_path, monkeypatch, path=path, level=0)
    assert not argv.exists()
    assert by["dcgm_diag"]["evidence"].startswith("skipped: DCGM diagnostics are off")
    assert code == nc.EXIT_OK


def test_a_dcgmi_without_its_host_engine_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEVEL_ENV, raising=False)
    fake_dcgmi(tmp_path, "Error: unable to establish a connection to the host engine", 255)
    code, by, _ = check(tmp_path, monkeypatch, path=f"{tmp_path / 'bin'}{os.pathsep}/usr/bin")
    r = by["dcgm_diag"]
    assert r["status"] == "warn" and r["values"]["ran"] is False
    assert "did not run" in r["evidence"]
    assert by["burnin"]["status"] == "pass" and code == nc.EXIT_OK


def test_a_bad_level_is_a_usage_error_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEVEL_ENV, "5")
    code, by, errs = check(tmp_path, monkeypatch, path=no_dcgmi(tmp_path))
    assert code == nc.EXIT_USAGE and by == {}
    assert errs == [f"{LEVEL_ENV} must be 0 (off) to 4, not '5'"]


@given(st.text(max_size=30))
def test_the_level_from_any_environment_is_0_to_4_or_refused(raw: str) -> None:
    if raw.strip() in ("", "0", "1", "2", "3", "4"):
        assert level_from_env({LEVEL_ENV: raw}) == int(raw.strip() or "2")
    else:
        with pytest.raises(ValueError, match=LEVEL_ENV) as refused:
            level_from_env({LEVEL_ENV: raw})
        assert "\n" not in str(refused.value)
