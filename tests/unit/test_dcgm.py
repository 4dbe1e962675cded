"""dcgmi diag -j documents of DCGM 3.x and 4.x to one dcgm_diag result."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from health.dcgm import diag_result, parse_output, run_dcgm_diag
from health.result import Status

DATA = Path(__file__).parent / "data"
AT = datetime(2026, 11, 26, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


def test_dcgm3_failed_test_is_listed_with_its_warning() -> None:
    r = diag_result(load("dcgm_diag_r1.json"), "gpu-001", AT)
    assert r.status is Status.FAIL and r.check == "dcgm_diag"
    assert r.evidence.startswith("Page Retirement/Row Remap on GPU 0,1,2,3,4,5,6,7: GPU 3 had")
    assert r.values["dcgm_version"] == "3.3.9"
    assert r.values["results_failed"] == 1 and r.values["results"] == 9


def test_dcgm3_all_pass() -> None:
    doc = load("dcgm_diag_r1.json")
    for test in doc["DCGM GPU Diagnostic"]["test_categories"][0]["tests"]:
        for res in test["results"]:
            res["status"] = "Pass"
            res.pop("warnings", None)
    r = diag_result(doc, "gpu-001", AT)
    assert (r.status, r.evidence) == (Status.PASS, "")


def test_dcgm4_entity_results() -> None:
    r = diag_result(load("dcgm_diag_r1_v4.json"), "gpu-001", AT)
    assert r.status is Status.FAIL
    assert r.gpus == (5,)
    assert r.evidence.startswith("software on GPU 5: Persistence mode for GPU 5 is disabled.")
    assert r.values["dcgm_version"] == "4.2.3"


def test_per_gpu_results_merge_and_warn() -> None:
    doc = {
        "DCGM GPU Diagnostic": {
            "test_categories": [
                {
                    "category": "Hardware",
                    "tests": [
                        {
                            "name": "GPU Memory",
                            "results": [
                                {"gpu_id": "0", "status": "Pass"},
                                {"gpu_id": "1", "status": "Warn", "warnings": ["slow"]},
                            ],
                        },
                        {"name": "Diagnostic", "results": [{"gpu_id": "0", "status": "Skip"}]},
                    ],
                }
            ]
        }
    }
    r = diag_result(doc, "gpu-001", AT, level=3)
    assert (r.status, r.evidence) == (Status.WARN, "GPU Memory on GPU 1: slow")
    assert r.values["results_skipped"] == 1


def test_runtime_error_and_foreign_json_warn() -> None:
    r = diag_result({"DCGM Diagnostic": {"runtime_error": "Error: GPU 0 is busy"}}, "n", AT)
    assert r.status is Status.WARN and "GPU 0 is busy" in r.evidence
    assert diag_result({"x": 1}, "n", AT).status is Status.WARN


def test_all_skipped_warns() -> None:
    doc = {
        "DCGM GPU Diagnostic": {
            "test_categories": [
                {
                    "category": "Integration",
                    "tests": [{"name": "PCIe", "results": [{"gpu_id": "0", "status": "Skip"}]}],
                }
            ]
        }
    }
    assert diag_result(doc, "n", AT).status is Status.WARN


def test_output_with_noise_around_the_document() -> None:
    text = "Successfully ran diagnostic for group.\n" + (DATA / "dcgm_diag_r1.json").read_text()
    assert "DCGM GPU Diagnostic" in parse_output(text)


def test_run_without_dcgmi_is_none() -> None:
    assert run_dcgm_diag("n", which=lambda name: None) is None


def test_run_parses_stdout_even_on_nonzero_exit() -> None:
    seen: list[list[str]] = []

    def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(
            argv, 226, (DATA / "dcgm_diag_r1_v4.json").read_text(), ""
        )

    r = run_dcgm_diag("n", 1, which=lambda name: "/usr/bin/dcgmi", run=run)
    assert seen == [["/usr/bin/dcgmi", "diag", "-r", "1", "-j"]]
    assert r is not None and r.status is Status.FAIL


def test_run_without_host_engine_warns() -> None:
    def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            argv,
            255,
            "",
            "Error: unable to establish a connection to the specified host: localhost\n",
        )

    r = run_dcgm_diag("n", 1, which=lambda name: "/usr/bin/dcgmi", run=run)
    assert r is not None and r.status is Status.WARN
    assert "unable to establish a connection" in r.evidence
