"""Node identities from a Kubernetes cluster: the node check's pod-bound ServiceAccount token.

The DaemonSet's pods (and burn-in Jobs) run as one ServiceAccount and mount a projected token
for computectl's audience. The kubelet asks for it bound to the pod, so the API server's
TokenReview answers with the pod and, since Kubernetes 1.30 (ServiceAccountTokenPodNodeInfo),
the node it runs on; such a token stops being valid once its pod is gone. Where the review
names no node, the pod is read: same uid, and its spec.nodeName.

Who may create pods as that ServiceAccount in its namespace may report for any node: the
namespace is computectl's alone (the kubernetes_health role's node-check DaemonSet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from scheduler.identity import NodeIdentity
from scheduler.kubernetes.client import KubeClient
from scheduler.kubernetes.settings import KubernetesSettings
from scheduler.kubernetes.token_review import ReviewedToken

NODE_NAME = "authentication.kubernetes.io/node-name"
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
# A JWS compact serialization (what the API server issues); anything else is not sent on.
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_LENGTH = 16384
# A node's name is a DNS subdomain.
_NODE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class TokenReviewer(Protocol):
    """What verification needs from the API server (`KubeClient` is one)."""

    def review_token(self, token: str, audiences: Sequence[str]) -> ReviewedToken | None: ...

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None: ...

    def close(self) -> None: ...


def service_account_of(setting: str) -> tuple[str, str]:
    """``namespace/name`` → (namespace, name)."""
    namespace, sep, name = setting.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"a ServiceAccount is namespace/name, not {setting!r}")
    return namespace, name


def bound_pod(review: ReviewedToken, username: str, audience: str) -> tuple[str, str, str] | None:
    """(pod, pod uid, node) of a reviewed token of ``username`` for ``audience``: node is ""
    when the review does not name it. None for any other token: another account, another
    audience, or not bound to a pod (a plain TokenRequest, a legacy Secret token)."""
    # The API server checked the audience; an answer that does not say so is not trusted.
    if audience not in review.audiences or review.username != username:
        return None
    pod = review.first(POD_NAME)
    if not pod:
        return None
    return pod, review.first(POD_UID), review.first(NODE_NAME)


class KubernetesNodeIdentity:
    """`scheduler.identity.NodeIdentityVerifier` over one cluster's TokenReview."""

    def __init__(
        self,
        reviewer: TokenReviewer,
        service_account: str,
        audience: str,
        pools: Iterable[str],
    ) -> None:
        self.reviewer = reviewer
        self.namespace, self.name = service_account_of(service_account)
        self.audience = audience
        self.pools = frozenset(pools)
        self.username = f"system:serviceaccount:{self.namespace}:{self.name}"

    def __repr__(self) -> str:
        return (
            f"KubernetesNodeIdentity({self.namespace}/{self.name}, audience={self.audience}, "
            f"pools={sorted(self.pools)})"
        )

    def verify(self, token: str) -> NodeIdentity | None:
        if len(token) > MAX_TOKEN_LENGTH or not _JWT.fullmatch(token):
            return None
        review = self.reviewer.review_token(token, [self.audience])
        bound = bound_pod(review, self.username, self.audience) if review else None
        if bound is None:
            return None
        pod, uid, node = bound
        node = node or self._node_of_pod(pod, uid)
        if not node or len(node) > 253 or not _NODE.fullmatch(node):
            return None
        return NodeIdentity(
            node=node, subject=f"sa:{self.namespace}/{self.name}@{pod}", pools=self.pools
        )

    def _node_of_pod(self, pod: str, uid: str) -> str:
        """The node of the token's pod, for API servers whose reviews do not name it."""
        if not uid:
            return ""
        obj = self.reviewer.get_object("Pod", pod, self.namespace)
        if obj is None:
            return ""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        if meta.get("uid") != uid:
            return ""  # another pod of the same name since
        node = spec.get("nodeName")
        return node if isinstance(node, str) else ""

    def close(self) -> None:
        self.reviewer.close()


def build(pools: Sequence[tuple[str, KubernetesSettings]]) -> list[KubernetesNodeIdentity]:
    """One verifier per cluster credential (kubeconfig, context), ServiceAccount and audience,
    for the pools that name a ServiceAccount; each with a client of its own."""
    groups: dict[tuple[Path | None, str | None, str, str], list[tuple[str, KubernetesSettings]]]
    groups = {}
    for name, k in pools:
        if k.node_agent_service_account:
            key = (k.kubeconfig, k.context, k.node_agent_service_account, k.token_audience)
            groups.setdefault(key, []).append((name, k))
    return [
        KubernetesNodeIdentity(
            KubeClient(
                kubeconfig,
                context,
                timeout_seconds=max(k.request_timeout_seconds for _, k in members),
            ),
            account,
            audience,
            [name for name, _ in members],
        )
        for (kubeconfig, context, account, audience), members in groups.items()
    ]
