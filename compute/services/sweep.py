"""One sweep: sync with the workload managers, collect, fold, decide, act, account."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from compute.backends import Backends
from compute.clock import Clock
from compute.domain import Allocation, Node, RackPower
from compute.errors import BackendError, NotLeading, RefusedError
from compute.services.acting import Acting
from compute.services.batch import BATCH_SIZE, BATCHED, Batch, sweep_batch
from compute.services.collect import CHECKED_STATES, BulkTelemetry, collect
from compute.services.ingest import fold
from compute.services.inventory import reconcile, seen_as
from compute.services.safe_text import safe
from compute.services.sweep_gc import full_collections_held
from compute.services.sweep_store import record_skipped, store_learnt
from compute.store import Store
from compute.store.repository import Tx
from health.consistency import drift_results
from health.policy import (
    Action,
    Decision,
    Lifecycle,
    NodeView,
    PolicyConfig,
    apply_budget,
    decide,
)
from health.result import CheckResult, Status, Value
from health.thresholds import Thresholds
from scheduler.errors import SchedulerError
from scheduler.protocol import NodeStatus

log = logging.getLogger("computectl")


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
    # Backends (kind and pools) that could not be listed: their nodes were left as they were.
    failed_backends: list[str] = field(default_factory=list)
    # Nodes that could not be stored or acted on this sweep, with why; the rest went on.
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepDeps:
    store: Store
    backends: Backends
    clock: Clock
    policy: PolicyConfig
    thresholds: Thresholds
    acting: Acting
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
        with full_collections_held():
            return self._run()

    def _run(self) -> SweepReport:
        d = self.d
        t0 = time.perf_counter()
        now = d.clock.now()
        report = SweepReport(started_at=now.isoformat())
        # What attention had taken out of each pool before the budget is counted here.
        attended = Counter(d.acting.attended)
        known = {n.name: n for n in d.store.nodes()}

        # 1. What the workload managers say.
        statuses: list[NodeStatus] = []
        allocations: list[Allocation] = []
        listed_pools: set[str] = set()
        for backend, pools in d.backends.groups():
            try:
                listed = [s for s in backend.list_nodes() if s.pool in pools]
                allocs = [a for a in backend.allocations() if a.pool in pools]
            except Exception as exc:  # a backend that fails, however, says nothing of its nodes
                where = f"{backend.kind} ({', '.join(sorted(pools))})"
                if not isinstance(exc, SchedulerError):
                    log.exception("%s: listing failed", where)
                report.errors.append(f"{where}: {safe(str(exc))}")
                report.failed_backends.append(where)
                continue
            statuses += listed
            listed_pools |= set(pools)
            allocations += [Allocation(a.tenant, a.pool, a.node, a.gpus, a.job) for a in allocs]
        observed = {p.name for p in d.store.pools() if p.mode == "observe"}
        synced = reconcile(known, statuses, d.node_rack, d.new_nodes, now, listed_pools, observed)
        for pool, why in sorted(synced.suspect.items()):
            report.errors.append(f"pool {pool}: {why}")
            report.failed_backends.append(f"pool {pool}")
        nodes = synced.nodes
        t1 = time.perf_counter()

        # 2. Passive checks and power where the control plane reads telemetry itself.
        results = []
        power: dict[str, float] = {}
        collected_names: set[str] = set()
        # Per node, what was learnt besides the listing: results to fold and other changes.
        learnt: dict[str, tuple[list[CheckResult], dict[str, Any]]] = {}
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
                learnt[name] = (list(node_results), dict(changes))
                nodes[name] = fold(before, node_results, d.policy, **changes)
                results += kept
                report.results += len(node_results)
                report.failed_results += sum(1 for r in node_results if r.failed)
        for name, watts in power.items():
            if name not in collected_names:
                learnt[name] = ([], {"power_watts": watts})
                nodes[name] = nodes[name].evolve(power_watts=watts)
        drift = self._version_drift(nodes, now)
        for r in drift:
            learnt.setdefault(r.node, ([], {}))[0].append(r)
        results += drift
        report.results += len(drift)
        t2 = time.perf_counter()

        # 3. Store what was learnt: in one transaction, or node by node if that fails.
        def fleet(tx: Tx) -> None:
            tx.replace_allocations(allocations)
            tx.add_rack_power(self._rack_power(nodes, now))

        def redo(fresh: Node) -> Node:
            """What this sweep learnt of a node, applied to it as stored now."""
            status = synced.listed.get(fresh.name)
            node = seen_as(fresh, status, now) if status is not None else fresh
            node_results, changes = learnt.get(fresh.name, ([], {}))
            return fold(node, node_results, d.policy, **changes)

        stored = store_learnt(
            d.store,
            nodes,
            synced.added,
            results,
            synced.events,
            report.skipped,
            fleet,
            redo,
            read=known,
        )
        t3 = time.perf_counter()

        # 4. Decide, within each pool's drain budget, and act. A node that could not be
        # stored is not acted on (what is stored of it is old), and counts for the budget.
        # Burn-in starts and resumes go in batches per pool (sweep_batch); the rest one by one.
        batches: dict[tuple[Action, str], list[tuple[Node, Decision]]] = defaultdict(list)
        try:
            for dec in self._decide(nodes, now):
                node = nodes[dec.node]
                if dec.node in report.skipped:
                    continue
                if dec.action is Action.DEFER and node.deferred_reason:
                    report.deferred.append({"node": dec.node, "reason": dec.reason})
                    continue  # recorded when it was first deferred
                if dec.action is Action.NONE and not (node.deferred_reason or node.would):
                    continue  # nothing to do, nothing to forget
                if dec.action not in BATCHED:
                    self._guarded(dec, partial(self._act, node, dec, attended, report), report)
                    continue
                batch = batches[(dec.action, node.pool)]
                batch.append((node, dec))
                if len(batch) >= BATCH_SIZE:
                    self._act_many(batch, attended, report)
                    batch.clear()
            for batch in batches.values():
                self._act_many(batch, attended, report)
        except NotLeading:
            report.errors.append("acting stopped: this control plane does not act now")
        record_skipped(d.store, now, nodes, report.skipped)
        t4 = time.perf_counter()

        with d.store.transaction() as tx:
            pruned = tx.prune(now - d.retention)
            report.duration_seconds = round(time.perf_counter() - t0, 4)
            report.nodes = len(nodes)
            report.stored_results = stored
            tx.set_meta(
                "last_sweep",
                {
                    "at": now.isoformat(),
                    "wall_at": time.time(),
                    "duration_seconds": report.duration_seconds,
                    "nodes": report.nodes,
                    "results": report.results,
                    "stored_results": report.stored_results,
                    "actions": len(report.actions),
                    "deferred": len(report.deferred),
                    "errors": [safe(e) for e in report.errors[:20]],
                    "failed_backends": report.failed_backends,
                    "skipped": len(report.skipped),
                    "pruned": pruned,
                },
            )
            if not report.failed_backends:
                tx.set_meta("last_good_sweep", {"at": now.isoformat(), "wall_at": time.time()})
        report.timings = {
            "sync_seconds": round(t1 - t0, 4),
            "collect_seconds": round(t2 - t1, 4),
            "store_seconds": round(t3 - t2, 4),
            "decide_act_seconds": round(t4 - t3, 4),
        }
        return report

    def _guarded(self, dec: Decision, act: Callable[[], None], report: SweepReport) -> None:
        """``act`` on ``dec``: what fails is reported, and the sweep goes on (NotLeading
        stops it)."""
        try:
            act()
        except NotLeading:
            raise
        except (BackendError, RefusedError) as exc:
            report.errors.append(str(exc))
        except Exception as exc:  # one node never stops the others
            log.exception("%s: %s failed", dec.node, dec.action.value)
            report.skipped[dec.node] = f"{dec.action.value}: {type(exc).__name__}: {exc}"
            report.errors.append(f"{dec.node}: {report.skipped[dec.node]}")

    def _act_many(
        self, planned: list[tuple[Node, Decision]], attended: Counter[str], report: SweepReport
    ) -> None:
        """A batch, under the act lock for the batch only; a node written since the sweep
        stored it is decided again alone."""
        if not planned:
            return
        with self.d.acting.lock:
            try:
                done, alone = sweep_batch(self.d.acting, planned, attended)
            except NotLeading:
                raise
            except Exception:  # the batch as a whole failed: each node alone, as before
                log.exception("acting on %d nodes together failed; one by one", len(planned))
                done, alone = Batch(), list(planned)
        by_name = {node.name: dec for node, dec in planned}
        for node in done.done:
            dec = by_name[node.name]
            report.actions.append(
                {"node": dec.node, "action": dec.action.value, "reason": dec.reason}
            )
        report.errors += [str(exc) for exc in done.refused.values()]
        for node, dec in alone:
            self._guarded(dec, partial(self._act, node, dec, attended, report), report)

    def _act(self, node: Node, dec: Decision, attended: Counter[str], report: SweepReport) -> None:
        """One decision, carried out under the act lock on the node as stored now."""
        acting = self.d.acting
        with acting.lock:
            node, dec = acting.sweep_check(node, dec, attended)
            if dec.action is Action.DEFER:
                report.deferred.append({"node": dec.node, "reason": dec.reason})
            if acting.carry_out(node, dec):
                report.actions.append(
                    {"node": dec.node, "action": dec.action.value, "reason": dec.reason}
                )

    def _decide(self, nodes: dict[str, Node], now: datetime) -> list[Decision]:
        d = self.d
        views: dict[str, list[NodeView]] = defaultdict(list)
        decisions = []
        for node in nodes.values():
            if node.state is Lifecycle.RETIRED:
                continue
            view = d.acting.view(node)
            views[node.pool].append(view)
            decisions.append(decide(view, node.health, d.policy, now))
        return apply_budget(decisions, views, d.policy)

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

    def _rack_power(self, nodes: dict[str, Node], now: datetime) -> list[RackPower]:
        sums: dict[str, float] = defaultdict(float)
        for n in nodes.values():
            if n.power_watts:
                sums[n.rack] += n.power_watts
        return [
            RackPower(rack=r, at=now, watts=round(w, 1), budget_watts=0.0)
            for r, w in sorted(sums.items())
        ]
