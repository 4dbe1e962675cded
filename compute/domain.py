"""The control plane's domain types. No ORM object crosses the store boundary: these do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from health.policy import DrainOwner, Lifecycle, NodeHealth


@dataclass(frozen=True, slots=True)
class Site:
    name: str


@dataclass(frozen=True, slots=True)
class Room:
    name: str
    site: str


@dataclass(frozen=True, slots=True)
class Rack:
    name: str
    room: str
    power_budget_watts: float


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    backend: str
    gpu_model: str


@dataclass(frozen=True, slots=True)
class Gpu:
    node: str
    index: int
    uuid: str
    model: str
    serial: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    pool: str
    rack: str
    gpu_model: str
    gpu_count: int
    state: Lifecycle
    state_since: datetime
    drain_reason: str = ""
    drain_owner: DrainOwner | None = None
    drain_actor: str = ""
    automation_drain: bool = False
    deferred_reason: str = ""
    jobs_running: int = 0
    gpus_allocated: int = 0
    backend_state: str = ""
    power_watts: float = 0.0
    last_seen: datetime | None = None
    last_checked_at: datetime | None = None
    health: NodeHealth = field(default_factory=NodeHealth)

    def evolve(self, **changes: Any) -> Node:
        return replace(self, **changes)


# What operators and automation are called in events and the audit log.
AUTOMATION = "computectl/automation"


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    node: str
    kind: str
    reason: str = ""
    actor: str = AUTOMATION
    pool: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    tenant: str
    pool: str
    node: str
    gpus: int
    job: str


@dataclass(frozen=True, slots=True)
class RackPower:
    rack: str
    at: datetime
    watts: float
    budget_watts: float


class EventKind:
    """Event kinds, as stored and shown."""

    NODE_ADDED = "node_added"
    DRAIN = "drain"
    DRAIN_DEFERRED = "drain_deferred"
    DRAINED = "drained"
    BURN_IN_STARTED = "burn_in_started"
    BURN_IN_PASSED = "burn_in_passed"
    BURN_IN_FAILED = "burn_in_failed"
    RESUME = "resume"
    REPAIR = "repair"
    RETIRE = "retire"
    EXTERNAL_DRAIN = "external_drain_seen"
    EXTERNAL_RESUME = "external_resume_seen"
    NODE_MISSING = "node_missing"
    NODE_RETURNED = "node_returned"
    BURN_IN_STALLED = "burn_in_stalled"
    NODE_SKIPPED = "node_skipped"
    POOL_CHANGED = "pool_changed"
    ACTION_FAILED = "action_failed"
