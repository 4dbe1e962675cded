"""What the roles of playbooks/ install carries no operator credential: the node check's pods
report with a projected ServiceAccount token, the timer, cron and Slurm with the node's own
token file; and the Slurm HealthCheckProgram wrapper ends a stuck check itself."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from health.node_token import NODE_TOKEN_FILE, PROJECTED_TOKEN
from scheduler.kubernetes.burnin import TOKEN_DIR, burn_in_job, token_volume
from tests.playbook_templates import ROLES, manifests, render

# What a node (or a pod on one) gets: none of it may hold an operator's token.
NODE_FILES = [
    ("gpu_node", "computectl-node.default"),
    ("gpu_node", "computectl-node-check.cron"),
    ("gpu_node", "computectl-node-check.service"),
    ("gpu_node", "computectl-node-check.timer"),
    ("slurm_health", "computectl-healthcheck"),
    ("slurm_health", "computectl-health.conf"),
    ("kubernetes_health", "node-check-daemonset.yaml"),
    ("kubernetes_health", "node-identity-rbac.yaml"),
    ("kubernetes_health", "burnin-rbac.yaml"),
]


@pytest.mark.parametrize(("role", "template"), NODE_FILES)
def test_nothing_a_node_gets_carries_or_asks_for_an_operator_token(
    role: str, template: str
) -> None:
    text = render(role, template, gpu_node_control_plane_url="http://cp:8080")
    for word in ("API_TOKEN", "api-token", "api_token", "secretKeyRef"):
        assert word not in text, f"{role}/{template} has {word}"
    burnin = (ROLES / "kubernetes_health" / "files" / "burnin-job.yaml").read_text()
    assert "secretKeyRef" not in burnin and "API_TOKEN" not in burnin


def test_the_node_token_is_where_the_check_looks_by_itself() -> None:
    env = render("gpu_node", "computectl-node.default", gpu_node_control_plane_url="http://cp")
    assert f"COMPUTECTL_TOKEN_FILE={NODE_TOKEN_FILE}" in env
    assert str(NODE_TOKEN_FILE) in render("slurm_health", "computectl-healthcheck")


def _pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    workload = next(d for d in docs if d["kind"] in ("DaemonSet", "Job"))
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _burnin_job() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return _pod_spec(
        list(
            yaml.safe_load_all(
                (ROLES / "kubernetes_health" / "files" / "burnin-job.yaml").read_text()
            )
        )
    )


def _daemonset() -> dict[str, Any]:
    return _pod_spec(manifests("kubernetes_health", "node-check-daemonset.yaml"))


@pytest.mark.parametrize("spec", [_daemonset, _burnin_job])
def test_the_pods_mount_a_projected_token_for_computectl_where_the_check_reads_it(
    spec: Any,
) -> None:
    pod = spec()
    assert pod["serviceAccountName"] == "computectl-node-check"
    assert pod["automountServiceAccountToken"] is False  # no token for the API server
    [volume] = [v for v in pod["volumes"] if "projected" in v]
    assert volume == token_volume("computectl")
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert (mount["mountPath"], mount["readOnly"]) == (str(PROJECTED_TOKEN.parent), True)
    assert PROJECTED_TOKEN.name == "token" and str(PROJECTED_TOKEN.parent) == TOKEN_DIR


def test_the_daemonsets_values_are_the_roles_variables() -> None:
    docs = manifests(
        "kubernetes_health",
        "node-check-daemonset.yaml",
        kubernetes_health_image="img:1",
        kubernetes_health_namespace="cc",
        kubernetes_health_token_audience="cp-east",
        kubernetes_health_runtime_class="nvidia",
    )
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {"cc"}
    pod = _pod_spec(docs)
    assert pod["containers"][0]["image"] == "img:1" and pod["runtimeClassName"] == "nvidia"
    [volume] = [v for v in pod["volumes"] if "projected" in v]
    assert volume == token_volume("cp-east")
    assert "runtimeClassName" not in _daemonset()


def test_the_burn_in_job_computectl_starts_is_the_deployed_one_in_its_credential() -> None:
    job = burn_in_job("kwok-gpu-001", "j", "img", "computectl-system", 8, "nvidia.com/gpu")
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == _burnin_job()["volumes"]
    assert pod["containers"][0]["volumeMounts"] == _burnin_job()["containers"][0]["volumeMounts"]
    assert all(
        "valueFrom" not in e or "configMapKeyRef" in e["valueFrom"]
        for e in pod["containers"][0]["env"]
    )
    other = burn_in_job("n", "j", "img", "ns", 8, "nvidia.com/gpu", audience="cp-east")
    sources = other["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["audience"] == "cp-east"


def test_the_control_plane_deployment_has_two_replicas_behind_the_daemonsets_service() -> None:
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in manifests(
            "kubernetes_control_plane", "control-plane.yaml", kubernetes_control_plane_image="cp:2"
        )
    }
    deployment = docs[("Deployment", "computectl")]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "computectl" and pod["containers"][0]["image"] == "cp:2"
    service = docs[("Service", "computectl")]
    port = service["spec"]["ports"][0]["port"]
    url = manifests("kubernetes_health", "node-check-daemonset.yaml")
    [config] = [d for d in url if d["kind"] == "ConfigMap"]
    assert config["data"]["COMPUTECTL_URL"] == (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}"
    )
    lease = docs[("Role", "computectl-leader-election")]["rules"][0]
    assert lease["apiGroups"] == ["coordination.k8s.io"] and lease["resources"] == ["leases"]


def _fake_computectl(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "computectl"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    return fake


def _wrapper(fake: Path, **env: str) -> tuple[int, float]:
    wrapper = fake.parent / "computectl-healthcheck"
    wrapper.write_text(
        render(
            "slurm_health", "computectl-healthcheck", slurm_health_env_file=f"{fake.parent}/none"
        )
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        ["/bin/sh", str(wrapper)],
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
        "--token-file",
        str(NODE_TOKEN_FILE),
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


def test_the_wrapper_reads_the_nodes_settings_without_handing_them_to_computectl(
    tmp_path: Path,
) -> None:
    """computectl takes COMPUTECTL_* in its environment for settings and refuses unknown
    names: the settings file's own variables reach it on the command line only."""
    env_file = tmp_path / "computectl-node"
    env_file.write_text(
        render(
            "gpu_node",
            "computectl-node.default",
            gpu_node_control_plane_url="http://cp:1",
            gpu_node_names=["gpu-001", "gpu-002"],
            gpu_node_token_dir="/tok",
            gpu_node_check_args="--source simulated",
            gpu_node_environment={"COMPUTECTL_DATA_DIR": "/data dir"},
        )
    )
    seen = tmp_path / "seen"
    fake = _fake_computectl(tmp_path, f'{{ env | grep ^COMPUTECTL | sort; echo "$@"; }} > {seen}')
    env_file.write_text(env_file.read_text() + f"COMPUTECTL={fake}\n")
    wrapper = tmp_path / "computectl-healthcheck"
    wrapper.write_text(
        render("slurm_health", "computectl-healthcheck", slurm_health_env_file=str(env_file))
    )
    subprocess.run(
        ["/bin/sh", str(wrapper)], env={"SLURMD_NODENAME": "gpu-002"}, check=True, timeout=30
    )
    assert seen.read_text().splitlines() == [
        "COMPUTECTL_DATA_DIR=/data dir",
        "node check --slurm --suite passive --source simulated --report http://cp:1 "
        "--token-file /tok/node-token.gpu-002",
    ]


def test_the_roles_install_the_wrapper_executable() -> None:
    tasks = (ROLES / "slurm_health" / "tasks" / "main.yml").read_text()
    assert 'dest: "{{ slurm_health_program }}"' in tasks and 'mode: "0755"' in tasks
    assert os.access(ROLES / "slurm_health" / "tasks" / "main.yml", os.R_OK)
