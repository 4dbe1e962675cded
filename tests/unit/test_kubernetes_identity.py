"""Reading a TokenReview's answer, and what of it makes a node identity (pure parts of
scheduler.kubernetes.token_review and scheduler.kubernetes.identity; the real API server's
answers are in tests/integration/test_kubernetes_node_identity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.kubernetes.identity import (
    NODE_NAME,
    POD_NAME,
    POD_UID,
    KubernetesNodeIdentity,
    bound_pod,
    service_account_of,
)
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.kubernetes.token_review import ReviewedToken, review_body, reviewed

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USER = "system:serviceaccount:computectl-system:computectl-node-check"
BOUND = {POD_NAME: ["node-check-x7k2p"], POD_UID: ["0d1e"], NODE_NAME: ["kwok-gpu-001"]}


def answer(authenticated: Any = True, **user: Any) -> dict[str, Any]:
    return {
        "kind": "TokenReview",
        "status": {
            "authenticated": authenticated,
            "user": {"username": USER, "uid": "u1", "groups": ["g"], "extra": BOUND, **user},
            "audiences": ["computectl"],
        },
    }


def test_an_authenticated_review_is_its_user() -> None:
    got = reviewed(answer())
    assert got == ReviewedToken(
        username=USER,
        uid="u1",
        groups=("g",),
        extra={k: tuple(v) for k, v in BOUND.items()},
        audiences=("computectl",),
    )
    assert got.first(NODE_NAME) == "kwok-gpu-001" and got.first("absent") == ""


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"status": None},
        {"status": {"authenticated": False, "error": "token has expired"}},
        {"status": {"authenticated": "true", "user": {"username": USER}}},
        answer(username=""),
        answer(username=7),
        {"status": {"authenticated": True, "user": "someone"}},
    ],
)
def test_anything_else_is_no_one(bad: dict[str, Any]) -> None:
    assert reviewed(bad) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@FAST
@given(st.dictionaries(st.sampled_from(["status", "kind", "x"]), json_values, max_size=3))
def test_any_answer_reads_as_a_user_or_no_one_never_an_error(doc: dict[str, Any]) -> None:
    got = reviewed(doc)
    assert got is None or (got.username and all(isinstance(v, tuple) for v in got.extra.values()))


def test_a_review_always_names_the_audience() -> None:
    """Without audiences the API server checks its own: a token for it would pass."""
    assert review_body("t", ["computectl"])["spec"] == {"token": "t", "audiences": ["computectl"]}
    with pytest.raises(ValueError, match="audiences"):
        review_body("t", [])


def review(**over: Any) -> ReviewedToken:
    fields: dict[str, Any] = {
        "username": USER,
        "extra": {k: tuple(v) for k, v in BOUND.items()},
        "audiences": ("computectl",),
    }
    return ReviewedToken(**{**fields, **over})


def test_a_pod_bound_token_of_the_account_for_computectl_names_pod_and_node() -> None:
    assert bound_pod(review(), USER, "computectl") == ("node-check-x7k2p", "0d1e", "kwok-gpu-001")
    # An API server that does not name the node: the pod is read (and its uid checked).
    no_node = review(extra={POD_NAME: ("p",), POD_UID: ("u",)})
    assert bound_pod(no_node, USER, "computectl") == ("p", "u", "")


@pytest.mark.parametrize(
    "other",
    [
        review(username="system:serviceaccount:tenant-a:computectl-node-check"),
        review(username="system:serviceaccount:computectl-system:default"),
        review(audiences=()),
        review(audiences=("https://kubernetes.default.svc.cluster.local",)),
        review(extra={}),  # a plain TokenRequest: bound to nothing
        review(extra={NODE_NAME: ("kwok-gpu-001",)}),  # node-bound, no pod: not a pod's token
    ],
)
def test_any_other_token_is_not_a_node_identity(other: ReviewedToken) -> None:
    assert bound_pod(other, USER, "computectl") is None


class _Refuses:
    """Asked nothing: a token that is not a JWS never reaches the API server."""

    def review_token(self, token: str, audiences: Sequence[str]) -> ReviewedToken | None:
        raise AssertionError("sent to the API server")

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        raise AssertionError("sent to the API server")

    def close(self) -> None:
        pass


@FAST
@given(st.text(max_size=100).filter(lambda t: t.count(".") != 2) | st.just("a." * 9000 + "b"))
def test_a_token_that_is_not_a_jws_is_refused_without_asking(token: str) -> None:
    verifier = KubernetesNodeIdentity(
        _Refuses(), "computectl-system/computectl-node-check", "computectl", ["training"]
    )
    assert verifier.verify(token) is None


def test_the_service_account_setting() -> None:
    assert service_account_of("computectl-system/computectl-node-check") == (
        "computectl-system",
        "computectl-node-check",
    )
    for bad in ("computectl-node-check", "/x", "x/", "a/b/c"):
        with pytest.raises(ValueError, match="namespace/name"):
            service_account_of(bad)
    assert KubernetesSettings().node_agent_service_account == (
        "computectl-system/computectl-node-check"
    )
    assert KubernetesSettings(node_agent_service_account="").node_agent_service_account == ""
    for bad in ("Computectl/x", "a/b/c", "ns", "ns/"):
        with pytest.raises(ValueError, match="node_agent_service_account"):
            KubernetesSettings(node_agent_service_account=bad)
