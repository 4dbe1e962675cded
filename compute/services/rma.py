"""The evidence an RMA ticket needs for a node in repair: serials, UUIDs, XIDs, figures, history."""

from __future__ import annotations

from dataclasses import dataclass

from compute.domain import Event, EventKind, Gpu, Node
from compute.services.fabric import PAIR_CHECK
from compute.services.lemons import MARK_KINDS, current
from compute.store import Store
from health.result import BURNIN_SUMMARY, CheckResult, Status, Suite

HISTORY_KINDS = (
    EventKind.DRAIN,
    EventKind.DRAINED,
    EventKind.BURN_IN_STARTED,
    EventKind.BURN_IN_FAILED,
    EventKind.BURN_IN_PASSED,
    EventKind.REPAIR,
    EventKind.RESUME,
    EventKind.EXTERNAL_DRAIN,
    EventKind.EXTERNAL_RESUME,
    EventKind.LEMON,
    EventKind.LEMON_CLEARED,
    EventKind.RETIRE,
)
# A lemon's report is its escalation: the vendor gets every repair and failure it had; so
# does a node whose mark was cleared (the board the vendor swapped has that history).
_HISTORY = 200
_LEMON_HISTORY = 100_000


@dataclass(frozen=True)
class RmaReport:
    node: Node
    gpus: list[Gpu]
    failures: list[CheckResult]  # failed or warning results, newest first
    burn_in: list[CheckResult]  # the latest burn-in run's results
    history: list[Event]
    lemon: Event | None = None  # the node's lemon mark in force (compute/services/lemons.py)

    @property
    def suspect_gpus(self) -> list[int]:
        return sorted({g for r in self.failures if r.status is Status.FAIL for g in r.gpus})

    @property
    def xid_codes(self) -> list[int]:
        codes: set[int] = set()
        for r in self.failures:
            raw = r.values.get("xid_codes")
            if r.check == "xid" and isinstance(raw, str):
                codes |= {int(c) for c in raw.split(",") if c.strip().isdigit()}
        return sorted(codes)

    def as_text(self) -> str:
        n = self.node
        lines = [
            f"RMA evidence for {n.name} ({n.gpu_count} x {n.gpu_model}, pool {n.pool}, "
            f"rack {n.rack})",
            f"state: {n.state.value} since {n.state_since:%Y-%m-%d %H:%M:%S} UTC",
            f"reason: {n.drain_reason or '-'}",
            f"suspect GPUs: {', '.join(map(str, self.suspect_gpus)) or 'none named'}",
            f"XID codes seen: {', '.join(map(str, self.xid_codes)) or 'none'}",
        ]
        if self.lemon is not None:
            lines.append(f"LEMON since {self.lemon.at:%Y-%m-%d %H:%M:%S} UTC: {self.lemon.reason}")
        lines += ["", "GPUs (index, serial, UUID):"]
        lines += [
            f"  {'*' if g.index in self.suspect_gpus else ' '} {g.index}  {g.serial:<16} {g.uuid}"
            for g in self.gpus
        ]
        lines += ["", "Failures and warnings (newest first):"]
        lines += [
            f"  {r.at:%Y-%m-%d %H:%M:%S}  {r.status.value:<4} {r.check:<15} {r.evidence}"
            for r in self.failures
        ] or ["  none recorded"]
        lines += ["", "Latest burn-in figures:"]
        for r in self.burn_in:
            figures = ", ".join(f"{k}={v}" for k, v in r.values.items())
            lines.append(f"  {r.status.value:<4} {r.check:<15} {figures}")
        if not self.burn_in:
            lines.append("  no burn-in recorded")
        lines += ["", "History:"]
        lines += [
            f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind:<16} {e.reason}  ({e.actor})"
            for e in self.history
        ]
        return "\n".join(lines)


def rma_report(store: Store, node: Node, limit: int = 500) -> RmaReport:
    results = store.results(node.name, limit=limit)
    failures = [r for r in results if r.status is not Status.PASS][:50]
    # Pair tests are active too, but run apart from the node's own burn-in.
    burn = [r for r in results if r.suite is Suite.BURNIN and r.check != PAIR_CHECK]
    # Newest first, a run ends with its summary: the newest run is everything up to the
    # summary before it.
    latest_run: list[CheckResult] = []
    for r in burn:
        if r.check == BURNIN_SUMMARY and latest_run:
            break
        latest_run.append(r)
    latest_run.sort(key=lambda r: r.check)
    marks = store.events(node=node.name, kinds=MARK_KINDS, limit=1)
    history = store.events(
        node=node.name,
        kinds=HISTORY_KINDS,
        limit=_HISTORY if not marks else _LEMON_HISTORY,
    )
    return RmaReport(
        node=node,
        gpus=store.gpus(node.name),
        failures=failures,
        burn_in=latest_run,
        history=history,
        lemon=current(marks),
    )
