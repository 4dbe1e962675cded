"""One sweep: sync with the workload managers, collect, fold, decide, act, account."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from compute.backends import Backends
from compute.clock import Clock
from compute.domain import AUTOMATION, Allocation, AuditEntry, Event, EventKind, Node, RackPower
from compute.errors import BackendError, RefusedError
from compute.services.collect import CHECKED_STATES, BulkTelemetry, collect
from compute.services.ingest import fold
from compute.services.inventory import reconcile
from compute.services.remediation import Remediator
from compute.store import Store
from health.consistency import drift_results
from health.policy import Action, Decision, NodeView, PolicyConfig, apply_budget, decide
from health.result import CheckResult, Status, Value
from health.thresholds import Thresholds
from scheduler.errors import SchedulerError
from scheduler.protocol import NodeStatus


@dataclass
class SweepReport:
    started_at: str = ""
    duration_seconds: float = 0.0
    nodes: int = 0
    results: int = 0
    stored_results: int = 0
    failed_results: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    deferred: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepDeps:
    store: Store
    backends: Backends
    clock: Clock
    policy: PolicyConfig
    thresholds: Thresholds
    remediator: Remediator
    telemetry: BulkTelemetry | None
    node_rack: dict[str, str]
    new_nodes: str
    retention: timedelta
    # Passing results are kept at most this often per node; every warning or failure, and
    # the pass that ends one, is always kept.
    passes_every: timedelta = timedelta(minutes=10)


class Sweeper:
    def __init__(self, deps: SweepDeps) -> None:
        self.d = deps

    def run(self) -> SweepReport:
        d = self.d
        t0 = time.perf_counter()
        now = d.clock.now()
        report = SweepReport(started_at=now.isoformat())
        known = {n.name: n for n in d.store.nodes()}

        # 1. What the workload managers say.
        statuses: list[NodeStatus] = []
        allocations: list[Allocation] = []
        for backend, pools in d.backends.groups():
            try:
                listed = [s for s in backend.list_nodes() if s.pool in pools]
                allocs = [a for a in backend.allocations() if a.pool in pools]
            except SchedulerError as exc:
                report.errors.append(f"{backend.kind} ({', '.join(sorted(pools))}): {exc}")
                continue
            statuses += listed
            allocations += [Allocation(a.tenant, a.pool, a.node, a.gpus, a.job) for a in allocs]
        synced = reconcile(known, statuses, d.node_rack, d.new_nodes, now)
        nodes = synced.nodes
        t1 = time.perf_counter()

        # 2. Passive checks and power where the control plane reads telemetry itself.
        results = []
        power: dict[str, float] = {}
        collected_names: set[str] = set()
        if d.telemetry is not None:
            collected = collect(d.telemetry, nodes.values(), d.store.gpu_uuids(), d.thresholds)
            power = collected.power_watts
            collected_names = set(collected.results)
            for name, node_results in collected.results.items():
                before = nodes[name]
                kept = self._worth_keeping(before, node_results, now)
                changes: dict[str, Any] = {"power_watts": power.get(name, before.power_watts)}
                if len(kept) == len(node_results):
                    changes["passes_stored_at"] = now
                nodes[name] = fold(before, node_results, d.policy, **changes)
                results += kept
                report.results += len(node_results)
                report.failed_results += sum(1 for r in node_results if r.failed)
        for name, watts in power.items():
            if name not in collected_names:
                nodes[name] = nodes[name].evolve(power_watts=watts)
        drift = self._version_drift(nodes, now)
        results += drift
        report.results += len(drift)
        t2 = time.perf_counter()

        # 3. Store what was learnt, in one transaction.
        with d.store.transaction() as tx:
            tx.add_nodes([nodes[name] for name in sorted(synced.added)])
            tx.put_nodes([nodes[n] for n in nodes if n not in synced.added])
            tx.add_results(results)
            for ev in synced.events:
                tx.add_event(ev)
            tx.replace_allocations(allocations)
            tx.add_rack_power(self._rack_power(nodes, now))
        t3 = time.perf_counter()

        # 4. Decide, within each pool's drain budget, and act.
        decisions = self._decide(nodes, now)
        for dec in decisions:
            node = nodes[dec.node]
            if dec.action is Action.DEFER:
                report.deferred.append({"node": dec.node, "reason": dec.reason})
                if not node.deferred_reason:
                    self._record_deferral(node, dec)
                continue
            if not dec.acts:
                if node.deferred_reason:
                    self._clear_deferral(node)
                continue
            try:
                d.remediator.apply(node, dec)
                report.actions.append(
                    {"node": dec.node, "action": dec.action.value, "reason": dec.reason}
                )
            except (BackendError, RefusedError) as exc:
                report.errors.append(str(exc))
        t4 = time.perf_counter()

        with d.store.transaction() as tx:
            pruned = tx.prune(now - d.retention)
            report.duration_seconds = round(time.perf_counter() - t0, 4)
            report.nodes = len(nodes)
            report.stored_results = len(results)
            tx.set_meta(
                "last_sweep",
                {
                    "at": now.isoformat(),
                    "duration_seconds": report.duration_seconds,
                    "nodes": report.nodes,
                    "results": report.results,
                    "stored_results": report.stored_results,
                    "actions": len(report.actions),
                    "deferred": len(report.deferred),
                    "errors": report.errors[:20],
                    "pruned": pruned,
                },
            )
        report.timings = {
            "sync_seconds": round(t1 - t0, 4),
            "collect_seconds": round(t2 - t1, 4),
            "store_seconds": round(t3 - t2, 4),
            "decide_act_seconds": round(t4 - t3, 4),
        }
        return report

    def _decide(self, nodes: dict[str, Node], now: datetime) -> list[Decision]:
        d = self.d
        views: dict[str, list[NodeView]] = defaultdict(list)
        decisions = []
        for node in nodes.values():
            view = NodeView(
                name=node.name,
                pool=node.pool,
                state=node.state,
                drain_owner=node.drain_owner,
                automation_drain=node.automation_drain,
                has_jobs=node.jobs_running > 0,
            )
            views[node.pool].append(view)
            decisions.append(decide(view, node.health, d.policy, now))
        return apply_budget(decisions, views, d.policy)

    def _record_deferral(self, node: Node, dec: Decision) -> None:
        now = self.d.clock.now()
        with self.d.store.transaction() as tx:
            tx.put_node(node.evolve(deferred_reason=dec.reason))
            tx.add_event(
                Event(
                    at=now,
                    node=node.name,
                    kind=EventKind.DRAIN_DEFERRED,
                    reason=dec.reason,
                    pool=node.pool,
                    detail={"check": dec.check, "fatal": dec.fatal},
                )
            )
            tx.add_audit(
                AuditEntry(
                    at=now,
                    actor=AUTOMATION,
                    action="node.drain_deferred",
                    target=node.name,
                    detail={"reason": dec.reason},
                )
            )

    def _worth_keeping(
        self, node: Node, results: list[CheckResult], now: datetime
    ) -> list[CheckResult]:
        last = node.health.passes_stored_at
        if last is None or now - last >= self.d.passes_every:
            return results
        unwell = node.health.unwell
        return [r for r in results if r.status is not Status.PASS or r.check in unwell]

    def _version_drift(self, nodes: dict[str, Node], now: datetime) -> list[CheckResult]:
        """Compare each pool's nodes' reported versions; fold the verdicts in."""
        by_pool: dict[str, dict[str, Mapping[str, Value]]] = defaultdict(dict)
        for node in nodes.values():
            versions = node.health.last_values.get("versions")
            if versions and node.state in CHECKED_STATES:
                by_pool[node.pool][node.name] = versions
        before = {
            n.name
            for n in nodes.values()
            if n.health.last_values.get("version_drift", {}).get("flagged")
        }
        out: list[CheckResult] = []
        for pool_values in by_pool.values():
            for r in drift_results(pool_values, now, before):
                nodes[r.node] = fold(nodes[r.node], [r], self.d.policy)
                out.append(r)
        return out

    def _clear_deferral(self, node: Node) -> None:
        with self.d.store.transaction() as tx:
            tx.put_node(node.evolve(deferred_reason=""))

    def _rack_power(self, nodes: dict[str, Node], now: datetime) -> list[RackPower]:
        sums: dict[str, float] = defaultdict(float)
        for n in nodes.values():
            if n.power_watts:
                sums[n.rack] += n.power_watts
        return [
            RackPower(rack=r, at=now, watts=round(w, 1), budget_watts=0.0)
            for r, w in sorted(sums.items())
        ]
