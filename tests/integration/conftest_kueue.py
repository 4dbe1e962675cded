"""A real Kueue controller manager beside the test API server: built and started by
testenv/kueue against the session's testenv/kubernetes cluster (the ``kube_cluster``
fixture), its webhooks on 127.0.0.1, managing Jobs and Pods in namespaces labelled
``computectl.io/queue=kueue`` only (the other tests' namespaces are left alone).

Not a conftest.py of its own: test modules import the fixture
(``from tests.integration.conftest_kueue import kueue``).
Its own state dir and port: COMPUTECTL_TEST_KUEUE_DIR (default: beside the Kubernetes
test cluster's state dir) and COMPUTECTL_TEST_KUEUE_PORT (default: the Kubernetes
test port base + 10; health probes on the next port).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import KUBE_PORT_BASE, KUBE_STATE_DIR, KubeCluster

ROOT = Path(__file__).resolve().parents[2]
KUEUE_STATE_DIR = Path(
    os.environ.get(
        "COMPUTECTL_TEST_KUEUE_DIR", KUBE_STATE_DIR.parent / f"{KUBE_STATE_DIR.name}-kueue"
    )
)
KUEUE_PORT = int(os.environ.get("COMPUTECTL_TEST_KUEUE_PORT", str(KUBE_PORT_BASE + 10)))


@dataclass(frozen=True)
class Kueue:
    state_dir: Path
    port: int
    kube: KubeCluster


def _testenv(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "testenv" / "kueue"), *args, "--state-dir", str(KUEUE_STATE_DIR)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def kueue(kube_cluster: KubeCluster) -> Iterator[Kueue]:
    """Kueue on the session's cluster (the first run builds it: many minutes)."""
    was_up = _testenv("status", timeout=30).returncode == 0
    up = _testenv(
        "up", "--kubeconfig", str(kube_cluster.kubeconfig), "--port", str(KUEUE_PORT), timeout=5400
    )
    if up.returncode:
        pytest.fail(f"testenv/kueue up failed:\n{up.stderr}{up.stdout}")
    yield Kueue(KUEUE_STATE_DIR, KUEUE_PORT, kube_cluster)
    if not was_up:
        # Also removes its webhook configurations: nothing would answer them.
        _testenv("down", timeout=60)
