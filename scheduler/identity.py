"""Node identities the workload manager vouches for: the seam the control plane's front door
asks about a bearer token that is not one of its own.

A node's agent (the DaemonSet's check, a burn-in Job) may already hold a credential its
workload manager issued and can verify, bound to the node it runs on (Kubernetes: the pod's
projected ServiceAccount token). The control plane offers such a token to the configured
verifiers and lets the holder report for that node only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who a verified token speaks for: exactly one node.

    ``subject`` names the credential for the audit trail
    ("sa:computectl-system/computectl-node-check@computectl-node-check-x7k2p");
    ``pools`` are the pools of the cluster that vouched for it: the node must be one of
    theirs (a Slurm node of the same name is not).
    """

    node: str
    subject: str
    pools: frozenset[str]


class NodeIdentityVerifier(Protocol):
    """Asks a workload manager whether a bearer token is one of its node identities."""

    def verify(self, token: str) -> NodeIdentity | None:
        """The identity, or None when the token is not one this verifier accepts (not its
        shape, not authenticated, another account or audience, not bound to a node). Raises
        `scheduler.errors.SchedulerError` when it cannot tell now (API server unreachable,
        computectl not allowed to ask)."""

    def close(self) -> None:
        """Release connections (idempotent)."""
