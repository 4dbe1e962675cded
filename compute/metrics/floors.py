"""/metrics: burn-in floors, fixed and learned, and the fleet's median figure per GPU model,
software stack and check, as last learned (compute/services/learned_floors.py), from the
store: every replica says the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.services.floors_report import report
from compute.store import Store

LABELS = ["gpu_model", "stack", "check"]


def metrics(store: Store) -> Iterator[Metric]:
    view = report(store)
    fixed = GaugeMetricFamily(
        "computectl_burnin_floor_fixed",
        "The fixed burn-in floor of the GPU model (health/data/floors.toml), in the check's "
        "unit (TFLOP/s, GB/s).",
        labels=LABELS,
    )
    learned = GaugeMetricFamily(
        "computectl_burnin_floor_learned",
        "The floor burn-in figures are judged against at ingest: learned from the fleet's "
        "passing burn-ins, or the fixed floor where too few (computectl_burnin_floor_learning).",
        labels=LABELS,
    )
    learning = GaugeMetricFamily(
        "computectl_burnin_floor_learning",
        "1 where the floor is learned, 0 where too few figures keep the fixed one.",
        labels=LABELS,
    )
    samples = GaugeMetricFamily(
        "computectl_burnin_floor_samples",
        "Passing burn-in figures the floor was learned from.",
        labels=LABELS,
    )
    median = GaugeMetricFamily(
        "computectl_burnin_median",
        "The median of the fleet's passing burn-in figures, in the check's unit.",
        labels=LABELS,
    )
    week = GaugeMetricFamily(
        "computectl_burnin_median_week_ago",
        "computectl_burnin_median as learned a week ago (absent: not kept that long).",
        labels=LABELS,
    )
    for r in view["floors"]:
        labels = [str(r["model"]), str(r["stack"]), str(r["check"])]
        fixed.add_metric(labels, float(r["fixed_floor"]))
        learned.add_metric(labels, float(r["learned_floor"]))
        learning.add_metric(labels, 1.0 if r["learned"] else 0.0)
        samples.add_metric(labels, float(r["samples"]))
        if r["median"] is not None:
            median.add_metric(labels, float(r["median"]))
        if r["median_week_ago"] is not None:
            week.add_metric(labels, float(r["median_week_ago"]))
    yield from (fixed, learned, learning, samples, median, week)
    if view["computed_at"]:
        at = GaugeMetricFamily(
            "computectl_burnin_floor_learned_timestamp_seconds",
            "When the floors were last learned (seconds since the epoch).",
        )
        at.add_metric([], datetime.fromisoformat(view["computed_at"]).timestamp())
        yield at
