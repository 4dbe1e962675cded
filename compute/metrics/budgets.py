"""Tenants' GPU-hour budgets on Kubernetes (compute/services/budget.py), from the store."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.services.budget import figures
from compute.store import Store


def budgets(store: Store) -> Iterator[Metric]:
    ratio = GaugeMetricFamily(
        "computectl_tenant_budget_used_ratio",
        "Share of its GPU-hour budget a tenant has used on Kubernetes since the budget's "
        "last reset (1: spent, its new GPU pods are refused).",
        labels=["tenant"],
    )
    used = GaugeMetricFamily(
        "computectl_tenant_budget_used_gpu_hours",
        "GPU-hours a tenant has used on Kubernetes since its budget's last reset.",
        labels=["tenant"],
    )
    stopped = GaugeMetricFamily(
        "computectl_tenant_budget_stopped",
        "1 while a tenant's new GPU pods are refused because its budget is spent.",
        labels=["tenant"],
    )
    for f in figures(store):
        ratio.add_metric([f.tenant], f.ratio)
        used.add_metric([f.tenant], f.used_gpu_hours)
        stopped.add_metric([f.tenant], 1.0 if f.stopped else 0.0)
    yield ratio
    yield used
    yield stopped
