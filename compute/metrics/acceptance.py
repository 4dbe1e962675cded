"""/metrics: tranche acceptance (compute/services/acceptance.py), per tranche: its state, its
nodes by verdict, the share accepted against its threshold, when its run started and when
it was judged.

Which tranches: every one not yet closed (created, running, judged), and the ``KEEP_CLOSED``
last closed (live or failed). Open tranches are few (a build-out's tranches in flight) and
each needs watching; closed ones pile up over the years, so only the last few keep series:
enough for a board of the build-out's recent outcomes, and for the alert on a tranche that
failed its threshold to go on firing until that tranche is run again (or many newer ones
closed). Label values are tranche names (valid_name: 64 characters at most).

Cost: every scrape reads the tranches' small columns; the nodes and the progress (JSON, a
megabyte for a 10,000-node tranche) only of a tranche whose version changed since the last
scrape (a step of its run: at most once per sweep), kept per version in the collector.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.services.acceptance import CREATED, FAILED, JUDGED, LIVE, RUNNING, STATES
from compute.services.acceptance_report import ACCEPTED, VERDICTS, verdicts
from compute.store import Store
from compute.store import acceptance as kept

OPEN = (CREATED, RUNNING, JUDGED)
CLOSED = (LIVE, FAILED)
KEEP_CLOSED = 20


@dataclass(frozen=True)
class Counted:
    version: int
    nodes: Counter[str]


class AcceptanceFigures:
    """Each shown tranche's nodes by verdict, counted once per version of its row."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted: dict[str, Counted] = {}

    def metrics(self, store: Store) -> Iterator[Metric]:
        heads = kept.heads(store, OPEN, CLOSED, KEEP_CLOSED)
        with self._lock:
            counted = {h.name: self._counted[h.name] for h in heads if h.name in self._counted}
        stale = [
            h.name for h in heads if h.name not in counted or counted[h.name].version != h.version
        ]
        for run in kept.runs(store, stale):
            final = run.state not in (CREATED, RUNNING)
            counted[run.name] = Counted(
                run.version, Counter(verdicts(run.nodes, run.progress, final).values())
            )
        with self._lock:
            # Only the tranches shown now: one gone from the scrape leaves the cache too.
            self._counted = counted
        yield from _families(heads, counted)


def _families(heads: list[kept.Head], counted: dict[str, Counted]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "computectl_acceptance_state",
        "1 for the state the tranche's acceptance is in (created, running, judged, live, "
        "failed), 0 for the others; tranches not closed and the last closed ones.",
        labels=["tranche", "state"],
    )
    nodes = GaugeMetricFamily(
        "computectl_acceptance_nodes",
        "The tranche's nodes by verdict (accepted, failed, not_tested, pending: before the "
        "verdict, a node whose run has not decided it yet).",
        labels=["tranche", "verdict"],
    )
    ratio = GaugeMetricFamily(
        "computectl_acceptance_pass_ratio",
        "Share of the tranche's nodes accepted (so far, while it runs); it goes live when "
        "this reaches its threshold at the verdict.",
        labels=["tranche"],
    )
    threshold = GaugeMetricFamily(
        "computectl_acceptance_threshold",
        "Share of its nodes the tranche needs accepted to go live.",
        labels=["tranche"],
    )
    started = GaugeMetricFamily(
        "computectl_acceptance_started_timestamp_seconds",
        "When the tranche's last run started (seconds since the epoch); none before it ran.",
        labels=["tranche"],
    )
    judged = GaugeMetricFamily(
        "computectl_acceptance_judged_timestamp_seconds",
        "When the tranche's last run was judged (seconds since the epoch).",
        labels=["tranche"],
    )
    for h in heads:
        for s in STATES:
            state.add_metric([h.name, s], 1.0 if h.state == s else 0.0)
        c = counted.get(h.name)
        if c is not None:
            for v in VERDICTS:
                nodes.add_metric([h.name, v], c.nodes[v])
            total = sum(c.nodes.values())
            ratio.add_metric([h.name], c.nodes[ACCEPTED] / total if total else 0.0)
        threshold.add_metric([h.name], h.threshold)
        if h.started_at is not None:
            started.add_metric([h.name], h.started_at.timestamp())
        if h.judged_at is not None:
            judged.add_metric([h.name], h.judged_at.timestamp())
    yield from (state, nodes, ratio, threshold, started, judged)
