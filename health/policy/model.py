"""The policy's vocabulary: lifecycle, decisions, per-node health memory, settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from health.evolve import evolver
from health.result import Value


class Lifecycle(StrEnum):
    PROVISIONING = "provisioning"
    BURN_IN = "burn_in"
    IN_SERVICE = "in_service"
    DRAINING = "draining"
    DRAINED = "drained"
    REPAIR = "repair"
    RETIRED = "retired"


class DrainOwner(StrEnum):
    COMPUTECTL = "computectl"
    EXTERNAL = "external"


class DrainMode(StrEnum):
    DRAIN = "drain"  # no new work; running jobs finish
    DOWN = "down"  # now: running jobs are ended


class Action(StrEnum):
    NONE = "none"
    DRAIN = "drain"
    DEFER = "defer"  # a drain held back by the pool's drain budget
    MARK_DRAINED = "mark_drained"
    START_BURN_IN = "start_burn_in"
    RESUME = "resume"
    REPAIR = "repair"
    CHECKUP = "checkup"  # periodic burn-in of an idle node in service
    CONTINUE_DRAIN = "continue_drain"  # a drain that left work behind is tried again
    BURN_IN_STALLED = "burn_in_stalled"  # burn-in never reported: no evidence, an operator looks


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    consecutive_failures: int = 3
    drain_budget_fraction: float = 0.10
    drain_budget_min_nodes: int = 1
    repeat_failure_window: timedelta = timedelta(days=7)
    burn_in_max_attempts: int = 2
    burn_in_timeout: timedelta = timedelta(hours=2)
    down_checks: frozenset[str] = frozenset()
    # Idle nodes in service get a burn-in when their last passed one is this old (None: never).
    periodic_burn_in: timedelta | None = timedelta(days=7)
    # At most this many periodic burn-ins start per pool per sweep (they also use the budget).
    periodic_burn_in_per_sweep: int = 1


@dataclass(frozen=True, slots=True)
class Finding:
    """A failure that wants the node out of service."""

    check: str
    evidence: str
    fatal: bool
    at: datetime
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class BurnInOutcome:
    passed: bool
    evidence: str
    at: datetime
    # A failure of a fatal check (silent data corruption, a GPU gone): no second burn-in.
    fatal: bool = False
    fatal_checks: tuple[str, ...] = ()  # which (empty when only the summary said so)


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """What the policy remembers about a node between sweeps."""

    streaks: Mapping[str, int] = field(default_factory=dict)
    finding: Finding | None = None
    burn_in_started_at: datetime | None = None
    burn_in_outcome: BurnInOutcome | None = None
    burn_in_failures: int = 0
    last_resumed_at: datetime | None = None
    repair_next: bool = False
    last_values: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)
    burn_in_passed_at: datetime | None = None
    # Checks whose latest result warned or failed (their next pass is worth keeping).
    unwell: frozenset[str] = frozenset()
    # When all of the node's passing results were last kept (see compute's sweep).
    passes_stored_at: datetime | None = None
    # The burn-in under way is voluntary (periodic): the node was healthy when it began.
    burn_in_voluntary: bool = False
    # Burn-ins in a row that never reported: no evidence either way, so never a failure.
    burn_in_missed: int = 0
    # A periodic burn-in that never reported: the next one waits a whole period from here.
    checkup_missed_at: datetime | None = None
    # Said once that burn-in does not report; the node waits for results or an operator.
    burn_in_stalled: bool = False
    # Work the last drain could not move (a disruption budget): the next sweep tries again.
    drain_blocked: tuple[str, ...] = ()
    # The state a node was in when its workload manager stopped listing it ("" if listed).
    gone_from: str = ""
    # The NVLink domain its workload manager lists it in (health/nvlink_domain.py: the GPU
    # feature discovery's clique label, a Slurm topology block), "" if none; and the
    # disagreement with the node's own NVML report last recorded, so it is recorded once.
    listed_domain: str = ""
    domain_noted: str = ""

    def evolve(self, **changes: Any) -> NodeHealth:
        """``dataclasses.replace(self, **changes)``, at a third of its cost."""
        return _evolve_health(self, changes)

    def to_json(self) -> dict[str, Any]:
        def ts(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        f = self.finding
        o = self.burn_in_outcome
        return {
            "streaks": {k: v for k, v in self.streaks.items() if v},
            "finding": None
            if f is None
            else {
                "check": f.check,
                "evidence": f.evidence,
                "fatal": f.fatal,
                "at": ts(f.at),
                "gpus": list(f.gpus),
            },
            "burn_in_started_at": ts(self.burn_in_started_at),
            "burn_in_outcome": None
            if o is None
            else {
                "passed": o.passed,
                "evidence": o.evidence,
                "at": ts(o.at),
                "fatal": o.fatal,
                "fatal_checks": list(o.fatal_checks),
            },
            "burn_in_failures": self.burn_in_failures,
            "last_resumed_at": ts(self.last_resumed_at),
            "repair_next": self.repair_next,
            "last_values": {k: dict(v) for k, v in self.last_values.items()},
            "burn_in_passed_at": ts(self.burn_in_passed_at),
            "unwell": sorted(self.unwell),
            "passes_stored_at": ts(self.passes_stored_at),
            "burn_in_voluntary": self.burn_in_voluntary,
            "burn_in_missed": self.burn_in_missed,
            "checkup_missed_at": ts(self.checkup_missed_at),
            "burn_in_stalled": self.burn_in_stalled,
            "drain_blocked": list(self.drain_blocked),
            "gone_from": self.gone_from,
            # Only where set: most nodes have none, and the domains' query looks for them.
            **({"listed_domain": self.listed_domain} if self.listed_domain else {}),
            **({"domain_noted": self.domain_noted} if self.domain_noted else {}),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> NodeHealth:
        if not raw:
            return cls()
        parse = datetime.fromisoformat
        get = raw.get

        def ts(v: Any) -> datetime | None:
            return parse(v) if v else None

        f = get("finding")
        o = get("burn_in_outcome")
        # Positional, in the fields' order: every node read makes one (a sweep of 10,240
        # nodes reads them twice), and keywords cost a third more.
        return cls(
            dict(get("streaks", {})),
            None
            if not f
            else Finding(
                f["check"],
                f["evidence"],
                f["fatal"],
                ts(f["at"]) or datetime.min,
                tuple(f.get("gpus", ())),
            ),
            ts(get("burn_in_started_at")),
            None
            if not o
            else BurnInOutcome(
                o["passed"],
                o["evidence"],
                ts(o["at"]) or datetime.min,
                # Rows stored before burn-in knew fatal failures read as not fatal.
                bool(o.get("fatal", False)),
                tuple(str(c) for c in o.get("fatal_checks", ())),
            ),
            int(get("burn_in_failures", 0)),
            ts(get("last_resumed_at")),
            bool(get("repair_next", False)),
            {k: dict(v) for k, v in get("last_values", {}).items()},
            ts(get("burn_in_passed_at")),
            frozenset(get("unwell", ())),
            ts(get("passes_stored_at")),
            bool(get("burn_in_voluntary", False)),
            int(get("burn_in_missed", 0)),
            ts(get("checkup_missed_at")),
            bool(get("burn_in_stalled", False)),
            tuple(str(x) for x in get("drain_blocked", ())),
            str(get("gone_from", "")),
            str(get("listed_domain", "")),
            str(get("domain_noted", "")),
        )


_evolve_health = evolver(NodeHealth)


@dataclass(frozen=True, slots=True)
class NodeView:
    """The node as the control plane sees it when the policy decides."""

    name: str
    pool: str
    state: Lifecycle
    drain_owner: DrainOwner | None = None
    automation_drain: bool = False
    has_jobs: bool = False
    # The pool can start a burn-in itself (a launcher); without one, burn-in results come
    # only from the node (cron, an operator), so no voluntary burn-in is ever started there.
    can_burn_in: bool = True
    # Out of service for a voluntary (periodic) burn-in, not for a fault.
    voluntary: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    node: str
    action: Action
    reason: str = ""
    mode: DrainMode = DrainMode.DRAIN
    fatal: bool = False
    check: str | None = None

    @property
    def acts(self) -> bool:
        return self.action not in (Action.NONE, Action.DEFER)
