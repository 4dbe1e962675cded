"""Node principals from credentials a workload manager issued and vouches for.

A bearer token that is not a ``cct_`` token is offered to the configured verifiers
(`scheduler.identity.NodeIdentityVerifier`; on Kubernetes the DaemonSet pod's projected
ServiceAccount token, checked through the API server's TokenReview). One that accepts it
names the single node its holder runs on: the principal is role node, bound to that node.

The node must be one the vouching cluster's pools hold in the control plane's inventory:
a Slurm node that happens to share a Kubernetes node's name is not reported for by a pod.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from compute.auth.principal import Principal, Role
from compute.errors import ComputeError
from scheduler.errors import SchedulerError
from scheduler.identity import NodeIdentityVerifier

if TYPE_CHECKING:
    from compute.config import Settings
    from compute.store import Store

# The node → its pool in the inventory (None: not known).
PoolOf = Callable[[str], str | None]
_log = logging.getLogger("computectl.auth")


class IdentityUnavailable(ComputeError):
    """No verifier accepted the token and one could not tell (its API server is down, or
    computectl may not ask): 503, not 401: the credential may well be good."""

    http_status = 503
    code = "identity_unavailable"
    exit_code = 3


class NodeIdentities:
    """The verifiers of every cluster that issues node identities, asked in turn."""

    def __init__(self, verifiers: Sequence[NodeIdentityVerifier], pool_of: PoolOf) -> None:
        self.verifiers = tuple(verifiers)
        self.pool_of = pool_of

    def __bool__(self) -> bool:
        return bool(self.verifiers)

    def resolve(self, token: str, source: str = "local") -> Principal | None:
        """The node principal ``token`` stands for, or None when no verifier accepts it (or
        its node is not one of the vouching cluster's). Raises IdentityUnavailable when none
        accepted it and one could not tell."""
        unavailable: list[str] = []
        for verifier in self.verifiers:
            try:
                identity = verifier.verify(token)
            except SchedulerError as exc:
                unavailable.append(str(exc))
                continue
            if identity is None:
                continue
            if self.pool_of(identity.node) not in identity.pools:
                return None
            return Principal(
                subject=identity.subject,
                role=Role.NODE,
                node=identity.node,
                name=identity.node,
                source=source,
            )
        if unavailable:
            # The why names the API server and computectl's account there: for the
            # operators' log, not for whoever sent the token.
            _log.warning("node credential not verified: %s", "; ".join(unavailable))
            raise IdentityUnavailable(
                "cannot verify the node credential now (its cluster's API server did not "
                "answer); try again later"
            )
        return None

    def close(self) -> None:
        for verifier in self.verifiers:
            verifier.close()


def node_identities(settings: Settings, pool_of: PoolOf) -> NodeIdentities:
    """The verifiers the configured pools name (built once, at start-up)."""
    from compute.config_pools import KubernetesPool

    tables = [(p.name, p.kubernetes) for p in settings.pools if isinstance(p, KubernetesPool)]
    if not tables:
        return NodeIdentities((), pool_of)
    from scheduler.kubernetes import identity

    return NodeIdentities(identity.build(tables), pool_of)


def pool_in(store: Store) -> PoolOf:
    """The pool the control plane's inventory holds a node in."""

    def pool_of(name: str) -> str | None:
        node = store.node(name)
        return node.pool if node is not None else None

    return pool_of
