"""playbooks/: ansible-lint (production profile) and ansible-playbook --syntax-check on every
playbook; `computectl provision` through the real ansible-runner (audit entry, rotated
artifacts, a failed host's exit code); the Kubernetes manifests in a server-side dry run
against the real test API server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import KUBE_TEST_LABEL, KubeCluster
from tests.playbook_templates import PLAYBOOKS, render

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _playbooks() -> list[str]:
    return sorted(p.name for p in PLAYBOOKS.glob("*.yml"))


def test_every_playbook_passes_ansible_lint_in_the_production_profile() -> None:
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", "-q"],
        cwd=PLAYBOOKS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_playbook_passes_the_syntax_check() -> None:
    assert {"site.yml", "control_plane.yml", "gpu_node.yml", "slurm_health.yml"} <= set(
        _playbooks()
    )
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", *_playbooks()],
        cwd=PLAYBOOKS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _site(tmp_path: Path, tasks: str) -> Path:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    (playbooks / "hosts.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        '      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )
    (playbooks / "one.yml").write_text(
        f"---\n- name: One\n  hosts: all\n  gather_facts: false\n  tasks:\n{tasks}"
    )
    return playbooks


def _provision(data: Path, playbooks: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "computectl"),
            "--data-dir",
            str(data),
            "provision",
            "--playbooks",
            str(playbooks),
            "-i",
            str(playbooks / "hosts.yml"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _entries(data: Path) -> list[dict[str, Any]]:
    """provision's audit entries, newest first, as `computectl audit` shows them."""
    out = subprocess.run(
        [str(BIN / "computectl"), "--data-dir", str(data), "audit", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [e for e in json.loads(out) if e["action"] == "provision.run"]


def test_a_run_is_shown_per_host_and_task_audited_and_its_artifacts_rotated(
    tmp_path: Path,
) -> None:
    touched = tmp_path / "touched"
    playbooks = _site(
        tmp_path,
        f"    - name: Touch a file\n      ansible.builtin.copy:\n        dest: {touched}\n"
        '        content: "x"\n        mode: "0644"\n',
    )
    data = tmp_path / "data"
    first = _provision(data, playbooks, "one", "--keep", "2")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "PLAY One" in first.stdout
    assert any(
        line.split()[:2] == ["changed", "localhost"] and "Touch a file" in line
        for line in first.stdout.splitlines()
    ), first.stdout
    for _ in range(2):
        again = _provision(data, playbooks, "one.yml", "--keep", "2", "--check", "--diff")
        assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (data / "provision" / "artifacts").iterdir()) == sorted(
        e["detail"]["run"] for e in _entries(data)[:2]
    )
    [newest, *_, oldest] = _entries(data)
    assert (oldest["result"], oldest["target"], oldest["actor"].startswith("operator:")) == (
        "ok",
        "one.yml",
        True,
    )
    assert oldest["detail"]["hosts"]["localhost"]["changed"] == 1
    assert (newest["detail"]["check"], newest["detail"]["diff"]) == (True, True)
    assert newest["detail"]["hosts"]["localhost"]["changed"] == 0


def test_a_failed_host_ends_the_command_with_exit_4_and_is_audited(tmp_path: Path) -> None:
    playbooks = _site(tmp_path, "    - name: Fail\n      ansible.builtin.fail:\n        msg: no\n")
    data = tmp_path / "data"
    proc = _provision(data, playbooks, "one", "--limit", "localhost")
    assert proc.returncode == 4, proc.stderr + proc.stdout
    assert "failed on localhost" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert any(line.split()[:2] == ["failed", "localhost"] for line in proc.stdout.splitlines())
    [entry] = _entries(data)
    assert entry["result"] == "failed: localhost" and entry["detail"]["limit"] == "localhost"


def _dry_run(kube: KubeCluster, docs: list[dict[str, Any]]) -> str:
    proc = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kube.kubeconfig),
            "apply",
            "--server-side",
            "--field-manager",
            "computectl-provision",
            "--dry-run=server",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_manifests_pass_a_server_side_dry_run(kube: KubeCluster, api: Any) -> None:
    ns = f"kt-provision-{uuid.uuid4().hex[:6]}"
    # A dry run creates no namespace, so the objects in it need a real one.
    api.create_namespace({"metadata": {"name": ns, "labels": {KUBE_TEST_LABEL: "true"}}})
    subjects = [{"kind": "User", "name": "computectl", "apiGroup": "rbac.authorization.k8s.io"}]
    docs: list[dict[str, Any]] = []
    for role, template, values in [
        (
            "kubernetes_control_plane",
            "control-plane.yaml",
            {"kubernetes_control_plane_namespace": ns, "kubernetes_control_plane_image": "cp:1"},
        ),
        (
            "kubernetes_health",
            "node-check-daemonset.yaml",
            {"kubernetes_health_namespace": ns, "kubernetes_health_image": "nc:1"},
        ),
        ("kubernetes_health", "node-identity-rbac.yaml", {"kubernetes_health_namespace": ns}),
        ("kubernetes_health", "burnin-rbac.yaml", {"kubernetes_health_namespace": ns}),
    ]:
        text = render(role, template, kubernetes_health_control_plane_subjects=subjects, **values)
        docs += [d for d in yaml.safe_load_all(text) if d and d["kind"] != "Namespace"]
    out = _dry_run(kube, docs)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "DaemonSet", "Service", "ServiceAccount", "ClusterRole", "Role"} <= kinds
    assert out.count("(server dry run)") == len(docs), out
    # Nothing was made.
    assert not api.list_namespaced_config_map(ns, label_selector="app.kubernetes.io/part-of").items
    # The burn-in Job an operator starts by hand is valid for the API server too.
    job = yaml.safe_load(
        (PLAYBOOKS / "roles/kubernetes_health/files/burnin-job.yaml")
        .read_text()
        .replace("@NODE@", "kwok-gpu-001")
    )
    job["metadata"]["namespace"] = ns
    assert "(server dry run)" in _dry_run(kube, [job])
