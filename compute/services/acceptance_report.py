"""A tranche's report (compute/services/acceptance.py): per node pass or fail with the
evidence, the RMA list, the fabric's suspect nodes and links, and the share accepted.

A node is accepted when its burn-in passed (figures against the floors: the burn-in's own
results carry them) and the pair test did not condemn it. A node nothing could be learnt of
(its burn-in never reported, someone else holds it) is not accepted, but it is no evidence
against the node either: it is not on the RMA list. A slow link condemns neither of its
nodes: it is reported for the cabling, not the vendor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compute.services.acceptance_steps import FAILED, PASSED, nodes_of
from compute.services.rma import rma_report
from compute.store import Store
from compute.store.acceptance import Tranche
from health.result import CheckResult, Status

_TEXT = 2000  # evidence kept per check (the node's stored results keep it whole)


def _evidence(r: CheckResult) -> dict[str, Any]:
    return {
        "check": r.check,
        "status": r.status.value,
        "evidence": r.evidence[:_TEXT],
        "gpus": list(r.gpus),
        "values": dict(r.values),
        "at": r.at.isoformat(),
    }


ACCEPTED, REJECTED, NOT_TESTED, PENDING = "accepted", "failed", "not_tested", "pending"
VERDICTS = (ACCEPTED, REJECTED, NOT_TESTED, PENDING)


@dataclass(frozen=True)
class Fabric:
    """What the pair test said of the tranche so far (nothing before it ran)."""

    pools: list[dict[str, Any]]
    suspects: dict[str, str]
    tested: set[str]
    links: list[list[str]]

    @classmethod
    def of(cls, progress: dict[str, Any]) -> Fabric:
        pools = progress.get("fabric", [])
        pools = pools if isinstance(pools, list) else []
        suspects: dict[str, str] = {}
        tested: set[str] = set()
        links: list[list[str]] = []
        for pool in pools:
            suspects.update(pool.get("suspect_nodes", {}))
            if pool.get("run"):
                tested.update(pool.get("nodes", []))
            links += [list(link) for link in pool.get("suspect_links", [])]
        return cls(pools, suspects, tested, links)

    def outcome(self, name: str) -> str:
        return "suspect" if name in self.suspects else "pass" if name in self.tested else "not_run"


def verdict(burn: str, fab: str, final: bool) -> str:
    if burn == PASSED and fab != "suspect":
        return ACCEPTED
    if burn == FAILED or fab == "suspect":
        return REJECTED
    return NOT_TESTED if final else PENDING


def verdicts(nodes: Sequence[str], progress: dict[str, Any], final: bool) -> dict[str, str]:
    """Each node's verdict from the run's progress alone, without reading the store (what
    /metrics counts at every scrape); ``final``: the tranche is judged."""
    mine, fabric = nodes_of(progress), Fabric.of(progress)
    return {
        n: verdict(str(mine.get(n, {}).get("burn_in", "waiting")), fabric.outcome(n), final)
        for n in nodes
    }


def build_report(store: Store, t: Tranche, judged_at: datetime | None) -> dict[str, Any]:
    """The report as things stand; ``judged_at``: the verdict's time (None: still running,
    so nothing is live yet)."""
    progress = nodes_of(t.progress)
    fabric = Fabric.of(t.progress)
    suspects, links = fabric.suspects, fabric.links
    rows: list[dict[str, Any]] = []
    rma: list[dict[str, Any]] = []
    for name in t.nodes:
        mine = progress.get(name, {})
        burn = str(mine.get("burn_in", "waiting"))
        fab = fabric.outcome(name)
        row: dict[str, Any] = {
            "node": name,
            "verdict": verdict(burn, fab, judged_at is not None),
            "burn_in": burn,
            "note": str(mine.get("note", "")),
            "fabric": fab,
            "links": [link for link in links if name in link],
            "evidence": [],
            "pool": "",
            "state": "unknown",
        }
        node = store.node(name)
        if node is not None:
            row.update(pool=node.pool, state=node.state.value)
        if row["verdict"] == REJECTED and node is not None:
            kept = rma_report(store, node)
            failing = [r for r in kept.burn_in if r.status is Status.FAIL]
            if name in suspects:
                failing = [r for r in kept.failures if r.check == "nccl_pair"][:1] + failing
            row["evidence"] = [_evidence(r) for r in failing or kept.failures[:5]]
            rma.append(
                {
                    "node": name,
                    "pool": node.pool,
                    "state": node.state.value,
                    "reason": node.drain_reason,
                    "suspect_gpus": kept.suspect_gpus,
                    "serials": [g.serial for g in kept.gpus if g.index in kept.suspect_gpus],
                    "xid_codes": kept.xid_codes,
                    "lemon": kept.lemon is not None,
                    "checks": sorted({e["check"] for e in row["evidence"]}),
                }
            )
        rows.append(row)
    accepted = sum(1 for r in rows if r["verdict"] == ACCEPTED)
    share = accepted / len(rows) if rows else 0.0
    return {
        "name": t.name,
        "state": t.state,
        "phase": t.phase,
        "final": judged_at is not None,
        "threshold": t.threshold,
        "started_at": t.started_at.isoformat() if t.started_at else None,
        "judged_at": judged_at.isoformat() if judged_at else None,
        "total": len(rows),
        "accepted": accepted,
        "failed": sum(1 for r in rows if r["verdict"] == REJECTED),
        "not_tested": sum(1 for r in rows if r["verdict"] in (NOT_TESTED, PENDING)),
        "share": round(share, 6),
        "live": judged_at is not None and share >= t.threshold,
        "rma": rma,
        "suspect_nodes": dict(sorted(suspects.items())),
        "suspect_links": sorted(links),
        "fabric": fabric.pools,
        "nodes": rows,
    }
