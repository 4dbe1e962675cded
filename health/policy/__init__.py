"""The remediation policy: pure functions from a node's history to a decision.

Nothing here talks to a workload manager or a store; the control plane feeds
the policy what it knows and carries out what it decides.
"""

from health.policy.budget import apply_budget, drain_budget
from health.policy.decide import after, decide, drain_mode, observe
from health.policy.model import (
    Action,
    Decision,
    DrainMode,
    DrainOwner,
    Finding,
    Lifecycle,
    NodeHealth,
    NodeView,
    PolicyConfig,
)
from health.policy.reasons import OWNED_PREFIX, is_owned, owned_reason
from health.policy.transition import LifecycleNode, back_in_service, drained_by, transition

__all__ = [
    "OWNED_PREFIX",
    "Action",
    "Decision",
    "DrainMode",
    "DrainOwner",
    "Finding",
    "Lifecycle",
    "LifecycleNode",
    "NodeHealth",
    "NodeView",
    "PolicyConfig",
    "after",
    "apply_budget",
    "back_in_service",
    "decide",
    "drain_budget",
    "drain_mode",
    "drained_by",
    "is_owned",
    "observe",
    "owned_reason",
    "transition",
]
