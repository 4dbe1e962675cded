"""A bearer token the workload manager vouches for becomes a node principal bound to one node
(compute.auth.serviceaccount), only for a node of the vouching cluster's pools."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.auth.principal import Principal, Role
from compute.auth.serviceaccount import IdentityUnavailable, NodeIdentities, node_identities
from compute.testing import make_settings
from scheduler.errors import Unreachable
from scheduler.identity import NodeIdentity
from scheduler.kubernetes.identity import KubernetesNodeIdentity

SUBJECT = "sa:computectl-system/computectl-node-check@node-check-x7k2p"
INVENTORY = {"kwok-gpu-001": "training", "gpu-001": "slurm-training"}


class Vouches:
    """A verifier (the scheduler.identity protocol) that knows one token."""

    def __init__(self, token: str, node: str, pools: frozenset[str], fails: bool = False) -> None:
        self.token, self.node, self.pools, self.fails = token, node, pools, fails
        self.asked = 0
        self.closed = False

    def verify(self, token: str) -> NodeIdentity | None:
        self.asked += 1
        if self.fails:
            raise Unreachable("review a token: cannot reach https://127.0.0.1:6443")
        if token != self.token:
            return None
        return NodeIdentity(node=self.node, subject=SUBJECT, pools=self.pools)

    def close(self) -> None:
        self.closed = True


def identities(*verifiers: Vouches) -> NodeIdentities:
    return NodeIdentities(verifiers, INVENTORY.get)


def test_a_vouched_token_is_a_node_principal_for_that_node_only() -> None:
    got = identities(Vouches("tok", "kwok-gpu-001", frozenset({"training"}))).resolve(
        "tok", source="10.0.0.7"
    )
    assert got == Principal(
        subject=SUBJECT, role=Role.NODE, node="kwok-gpu-001", name="kwok-gpu-001", source="10.0.0.7"
    )
    assert got.actor == f"{SUBJECT} (kwok-gpu-001)"


def test_a_token_no_verifier_knows_is_no_one() -> None:
    assert identities(Vouches("tok", "kwok-gpu-001", frozenset({"training"}))).resolve("x") is None
    assert not identities() and identities().resolve("tok") is None


@pytest.mark.parametrize("node", ["gpu-001", "not-in-the-inventory"])
def test_a_node_outside_the_vouching_clusters_pools_is_refused(node: str) -> None:
    """A pod on a Kubernetes node named like a Slurm node does not report for the Slurm one."""
    assert identities(Vouches("tok", node, frozenset({"training"}))).resolve("tok") is None


def test_a_verifier_that_cannot_tell_is_503_unless_another_vouches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Vouches("tok", "kwok-gpu-001", frozenset({"training"}), fails=True)
    with pytest.raises(IdentityUnavailable, match="cannot verify the node credential now") as e:
        identities(down).resolve("tok")
    assert e.value.http_status == 503
    # Where the API server is and who computectl is there: in the log, not in the answer.
    assert "127.0.0.1:6443" not in str(e.value)
    assert "cannot reach https://127.0.0.1:6443" in caplog.text
    up = Vouches("tok", "kwok-gpu-001", frozenset({"training"}))
    got = identities(down, up).resolve("tok")
    assert got is not None and got.node == "kwok-gpu-001" and (down.asked, up.asked) == (2, 1)


def test_close_closes_every_verifier() -> None:
    a, b = Vouches("a", "n", frozenset()), Vouches("b", "n", frozenset())
    identities(a, b).close()
    assert a.closed and b.closed


def test_built_from_the_settings_one_per_cluster_and_account(tmp_path: Path) -> None:
    pool = {"backend": "kubernetes", "gpu_model": "H100"}
    kube = {"kubeconfig": str(tmp_path / "kubeconfig")}
    other = {**kube, "node_agent_service_account": ""}
    pools = [
        {**pool, "name": "training", "kubernetes": kube},
        {**pool, "name": "inference", "kubernetes": kube},
        {**pool, "name": "other", "kubernetes": other},
    ]
    settings = make_settings(tmp_path, {"pools": pools, "simulation": {"enabled": False}})
    built = node_identities(settings, INVENTORY.get)
    try:
        assert len(built.verifiers) == 1
        (verifier,) = built.verifiers
        assert isinstance(verifier, KubernetesNodeIdentity)
        assert verifier.pools == frozenset({"training", "inference"})
    finally:
        built.close()
    assert not node_identities(make_settings(tmp_path), INVENTORY.get)
