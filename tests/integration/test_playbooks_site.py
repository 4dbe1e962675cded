"""A site from nothing with `computectl provision`, for real, on this machine (local
connection): the control plane installed from this checkout into a virtualenv and started
from its unit's ExecStart (systemd is not PID 1 here), its node tokens issued, the GPU nodes'
settings and tokens, Slurm's HealthCheckProgram wired into the real test cluster (slurmd runs
it and the node's results reach the control plane), the node check's objects applied to the
real test API server; then the same run again changes nothing on any host.

Every path is under a temporary directory (the roles' paths are variables)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import ROOT, KubeCluster, SlurmCluster

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
PORT = 19210
NODES = [f"gpu-{i:03d}" for i in range(1, 9)]  # the Slurm test cluster's, and the simulation's
HEALTH_INTERVAL = 10


def _wheel(tmp: Path) -> Path:
    """computectl's wheel, built once from a copy of the checkout (setuptools writes build/)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("compute", "health", "scheduler"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp / "wheel"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("--disable-pip-version-check", "-w", str(out), str(src)),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = out.glob("computectl-*.whl")
    return wheel


def _venv(path: Path) -> None:
    """The virtualenv the role installs into, made beforehand so that the checkout's
    dependencies are seen through a .pth file: the role's pip then installs computectl alone
    (--no-deps --no-index), and nothing is downloaded."""
    subprocess.run([sys._base_executable, "-m", "venv", str(path)], check=True, timeout=300)  # type: ignore[attr-defined]
    [site] = path.glob("lib/python*/site-packages")
    [deps] = Path(sys.prefix).glob("lib/python*/site-packages")
    (site / "computectl-deps.pth").write_text(f"{deps}\n")


def _inventory(
    path: Path, site: Path, wheel: Path, slurm: SlurmCluster, kube: KubeCluster, ns: str
) -> dict[str, Any]:
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    install = {"pip_spec": str(wheel), "pip_args": "--no-deps --no-index"}
    values: dict[str, Any] = {
        "control_plane_user": "root",
        "control_plane_group": "root",
        "control_plane_create_user": False,
        **{f"control_plane_{k}": v for k, v in install.items()},
        "control_plane_venv": str(site / "venv"),
        "control_plane_config_dir": str(site / "etc"),
        "control_plane_data_dir": str(site / "data"),
        "control_plane_port": PORT,
        "control_plane_unit_dir": str(site / "systemd"),
        "control_plane_manage_service": False,
        "control_plane_node_tokens": NODES,
        "gpu_node_names": NODES,  # the test cluster runs every slurmd on this host
        **{f"gpu_node_{k}": v for k, v in install.items()},
        "gpu_node_venv": str(site / "venv"),
        "gpu_node_nvidia_smi": str(site / "no-nvidia-smi"),
        "gpu_node_textfile_dir": str(site / "textfile"),
        "gpu_node_env_file": str(site / "etc" / "computectl-node"),
        "gpu_node_control_plane_url": f"http://127.0.0.1:{PORT}",
        # The simulation's GPUs (the control plane's own data directory) stand in for real ones.
        "gpu_node_check_args": "--source simulated",
        "gpu_node_environment": {"COMPUTECTL_DATA_DIR": str(site / "data")},
        "gpu_node_token_dir": str(site / "etc"),
        "gpu_node_token_source_dir": str(site / "etc" / "node-tokens"),
        "gpu_node_unit_dir": str(site / "systemd"),
        "gpu_node_cron_dir": str(site / "cron.d"),
        "gpu_node_manage_services": False,
        "slurm_health_program": str(site / "sbin" / "computectl-healthcheck"),
        "slurm_health_env_file": str(site / "etc" / "computectl-node"),
        "slurm_health_slurm_conf": str(slurm.slurm_conf),
        "slurm_health_conf_file": str(site / "etc" / "computectl-health.conf"),
        "slurm_health_interval": HEALTH_INTERVAL,
        "slurm_health_node_state": "ANY",
        "kubernetes_health_kubeconfig": str(kube.kubeconfig),
        "kubernetes_health_namespace": ns,
        "kubernetes_health_image": "registry.example.com/computectl/node-check:test",
        "kubernetes_health_control_plane_subjects": [
            {"kind": "User", "name": "computectl", "apiGroup": "rbac.authorization.k8s.io"}
        ],
    }
    groups = ["control_plane", "gpu_nodes", "slurm_nodes", "slurm_controller"]
    inventory = {
        "all": {
            "hosts": {"localhost": local},
            "children": {
                **{g: {"hosts": {"localhost": None}} for g in groups},
                "kubernetes_clusters": {"hosts": {"localhost": None}},
            },
            "vars": values,
        }
    }
    path.write_text(yaml.safe_dump(inventory))
    return values


def _provision(operator: Path, inventory: Path, playbook: str) -> tuple[dict[str, Any], str]:
    """Run PLAYBOOK: its audit entry's detail (the summary per host), and its progress lines."""
    proc = subprocess.run(
        [
            str(BIN / "computectl"),
            "--data-dir",
            str(operator),
            "provision",
            playbook,
            "-i",
            str(inventory),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    audit = subprocess.run(
        [str(BIN / "computectl"), "--data-dir", str(operator), "audit", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    newest = next(e for e in json.loads(audit.stdout) if e["action"] == "provision.run")
    assert newest["target"] == playbook and newest["result"] == "ok"
    detail: dict[str, Any] = newest["detail"]
    return detail, proc.stdout


def _exec_start(unit: Path) -> list[str]:
    [line] = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


def _healthz() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture
def serving() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The control plane the test starts as systemd would; stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_a_site_from_nothing_then_again_with_nothing_to_change(
    slurm: SlurmCluster,
    kube: KubeCluster,
    api: Any,
    tmp_path: Path,
    serving: list[subprocess.Popen[bytes]],
) -> None:
    site, operator = tmp_path / "site", tmp_path / "operator"
    (site / "sbin").mkdir(parents=True)
    for d in ("systemd", "cron.d"):
        (site / d).mkdir()
    wheel = _wheel(tmp_path)
    _venv(site / "venv")
    ns = f"kt-provision-{uuid.uuid4().hex[:6]}"
    inventory = tmp_path / "hosts.yml"
    values = _inventory(inventory, site, wheel, slurm, kube, ns)
    # The control plane first, without node tokens: nodes are known once it has swept.
    first = tmp_path / "first.yml"
    first_inv = yaml.safe_load(inventory.read_text())
    first_inv["all"]["vars"]["control_plane_node_tokens"] = []
    first.write_text(yaml.safe_dump(first_inv))
    try:
        summary, _ = _provision(operator, first, "control_plane.yml")
        assert summary["hosts"]["localhost"]["changed"] > 0
        venv = Path(values["control_plane_venv"])
        installed = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import compute; print(compute.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout
        assert installed.startswith(str(venv)), installed  # the wheel, not the checkout
        # systemd is not PID 1 here: start the unit's command line as it would.
        argv = _exec_start(site / "systemd" / "computectl.service")
        assert argv[0] == str(venv / "bin" / "computectl") and argv[-1] == "serve"
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            serving.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT))
        slurm.wait("the installed control plane to answer /healthz", _healthz, 120)

        # The whole site: tokens, GPU nodes, Slurm, Kubernetes.
        summary, _ = _provision(operator, inventory, "site.yml")
        assert summary["hosts"]["localhost"]["changed"] > 0
        for node in NODES:
            token = site / "etc" / f"node-token.{node}"
            assert token.stat().st_mode & 0o777 == 0o600
        conf = slurm.slurm_conf.read_text()
        assert f"Include {site}/etc/computectl-health.conf" in conf
        health = [
            line.split("=", 1)[1].strip()
            for line in slurm.run("scontrol", "show", "config").splitlines()
            if line.startswith("HealthCheckProgram ")
        ]
        assert health == [values["slurm_health_program"]]  # slurmctld read it: reconfigured

        # slurmd runs the check on its nodes; their results reach the control plane with
        # each node's own token (used for nothing else: the control plane notes its use).
        def reported() -> set[str]:
            tokens = subprocess.run(
                [
                    str(venv / "bin" / "computectl"),
                    "--config",
                    str(site / "etc" / "computectl.toml"),
                    "tokens",
                    "list",
                    "-o",
                    "json",
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            return {t["node"] for t in json.loads(tokens.stdout) if t["last_used_at"]}

        slurm.wait(
            "the nodes' results to reach the control plane", lambda: len(reported()) >= 2, 180
        )
        assert reported() <= set(NODES)
        assert not slurm.reasons(), "the simulation's healthy GPUs drain nothing"

        from kubernetes import client

        apps = client.AppsV1Api(api.api_client)
        ds = apps.read_namespaced_daemon_set("computectl-node-check", ns)
        assert ds.spec.template.spec.containers[0].image.endswith(":test")
        assert api.read_namespaced_service_account("computectl-node-check", ns)

        # Again: nothing changes on any host.
        again, lines = _provision(operator, inventory, "site.yml")
        changed = [line for line in lines.splitlines() if line.split()[:1] == ["changed"]]
        assert {h: s["changed"] for h, s in again["hosts"].items()} == {"localhost": 0}, changed
        assert again["hosts"]["localhost"]["failed"] == 0
    finally:
        if os.environ.get("COMPUTECTL_TEST_KEEP_SITE") is None:
            api.delete_namespace(ns, propagation_policy="Background", _request_timeout=30)
        slurm.up()  # slurm.conf without the Include, daemons restarted on it
        slurm.run(
            "scontrol",
            "update",
            f"nodename=gpu-[001-{len(NODES):03d}]",
            "state=resume",
            check=False,
        )
