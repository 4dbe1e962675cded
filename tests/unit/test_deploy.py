"""deploy/ carries no operator credential: the node check's pods report with a projected
ServiceAccount token, cron and Slurm with the node's own token file; and the Slurm
HealthCheckProgram wrapper ends a stuck check itself."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from health.node_token import NODE_TOKEN_FILE, PROJECTED_TOKEN
from scheduler.kubernetes.burnin import TOKEN_DIR, burn_in_job, token_volume

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WRAPPER = DEPLOY / "slurm" / "computectl-healthcheck"


def test_no_file_in_deploy_carries_or_asks_for_an_operator_token() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for word in ("API_TOKEN", "api-token", "api_token", "secretKeyRef"):
                assert word not in text, f"{path.relative_to(DEPLOY)} has {word}"
    assert str(NODE_TOKEN_FILE) in (DEPLOY / "cron" / "computectl-node.default").read_text()
    assert str(NODE_TOKEN_FILE) in WRAPPER.read_text()


def _pod_spec(name: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()))
    workload = next(d for d in docs if d["kind"] in ("DaemonSet", "Job"))
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("manifest", ["node-check-daemonset.yaml", "burnin-job.yaml"])
def test_the_pods_mount_a_projected_token_for_computectl_where_the_check_reads_it(
    manifest: str,
) -> None:
    spec = _pod_spec(manifest)
    assert spec["serviceAccountName"] == "computectl-node-check"
    assert spec["automountServiceAccountToken"] is False  # no token for the API server
    [volume] = [v for v in spec["volumes"] if "projected" in v]
    assert volume == token_volume("computectl")
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert (mount["mountPath"], mount["readOnly"]) == (str(PROJECTED_TOKEN.parent), True)
    assert PROJECTED_TOKEN.name == "token" and str(PROJECTED_TOKEN.parent) == TOKEN_DIR


def test_the_burn_in_job_computectl_starts_is_the_deployed_one_in_its_credential() -> None:
    job = burn_in_job("kwok-gpu-001", "j", "img", "computectl-system", 8, "nvidia.com/gpu")
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == _pod_spec("burnin-job.yaml")["volumes"]
    assert (
        pod["containers"][0]["volumeMounts"]
        == (_pod_spec("burnin-job.yaml")["containers"][0]["volumeMounts"])
    )
    assert all(
        "valueFrom" not in e or "configMapKeyRef" in e["valueFrom"]
        for e in pod["containers"][0]["env"]
    )
    other = burn_in_job("n", "j", "img", "ns", 8, "nvidia.com/gpu", audience="cp-east")
    sources = other["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["audience"] == "cp-east"


def _fake_computectl(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "computectl"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    return fake


def _wrapper(fake: Path, **env: str) -> tuple[int, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        ["/bin/sh", str(WRAPPER)],
        env={"COMPUTECTL": str(fake), "SLURMD_NODENAME": "gpu-001", **env},
        timeout=30,
        check=False,
    )
    return proc.returncode, time.monotonic() - t0


def test_the_health_check_wrapper_passes_the_checks_exit_code(tmp_path: Path) -> None:
    args = tmp_path / "args"
    fake = _fake_computectl(tmp_path, f'echo "$@" > {args}; exit 3')
    code, _ = _wrapper(fake, COMPUTECTL_URL="http://cp:8080")
    assert code == 3
    assert args.read_text().split() == [
        "node",
        "check",
        "--slurm",
        "--suite",
        "passive",
        "--report",
        "http://cp:8080",
    ]


def test_a_stuck_check_is_ended_by_the_wrapper_before_slurmd_would(tmp_path: Path) -> None:
    fake = _fake_computectl(tmp_path, "exec sleep 30")
    code, took = _wrapper(fake, COMPUTECTL_HEALTHCHECK_TIMEOUT="1")
    assert code == 124 and took < 5


def test_a_check_that_ignores_term_is_killed(tmp_path: Path) -> None:
    fake = _fake_computectl(tmp_path, "trap '' TERM\nsleep 8 & wait; sleep 8 & wait")
    code, took = _wrapper(fake, COMPUTECTL_HEALTHCHECK_TIMEOUT="1")
    # timeout(1) passes the KILL on: the wrapper ends as its check did.
    assert code == -9 and 5 <= took < 10


@pytest.mark.parametrize("limit", ["", "abc", "0", "007", "-5", "99999999999999999999"])
def test_a_bad_limit_falls_back_within_slurmds(tmp_path: Path, limit: str) -> None:
    """The wrapper still runs the check (with its default or its cap), never without a limit."""
    seen = tmp_path / "seen"
    fake = _fake_computectl(tmp_path, f"echo ran > {seen}")
    code, _ = _wrapper(fake, COMPUTECTL_HEALTHCHECK_TIMEOUT=limit)
    assert code == 0 and seen.read_text() == "ran\n"


def test_the_wrapper_is_executable() -> None:
    assert os.access(WRAPPER, os.X_OK)
