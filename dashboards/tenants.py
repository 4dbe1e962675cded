"""Tenants: GPUs held, power and energy, GPU-hour budgets and drift from their specs."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import board, rows, series


def tenants() -> Dashboard:
    return (
        board(
            "computectl-tenants",
            "computectl — tenants",
            "What each tenant holds and draws, its GPU-hour budget and its drift.",
        )
        .with_row(Row("Use"))
        .with_panel(
            series(
                "GPUs by tenant",
                (
                    "sum by (tenant) (max by (tenant, pool, gpu_model)"
                    " (computectl_tenant_gpus_allocated))",
                    "{{tenant}}",
                ),
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Power by tenant (GPU energy rate)",
                ("tenant:computectl_tenant_power_kilowatts:rate5m", "{{tenant}}"),
                unit="kwatt",
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Power by tenant, pool and GPU model",
                (
                    "tenant_pool_gpu_model:computectl_tenant_power_watts:rate5m",
                    "{{tenant}} {{pool}} {{gpu_model}}",
                ),
                unit="watt",
            )
        )
        .with_panel(
            rows(
                "Energy per tenant over the last day (kWh)",
                "sum by (tenant, pool, gpu_model) (max by (tenant, pool, gpu_model)"
                " (increase(computectl_tenant_energy_joules_total[1d]))) / 3.6e6",
                width=12,
            )
        )
        .with_row(Row("Budgets and drift"))
        .with_panel(
            series(
                "GPU-hour budget used",
                ("max by (tenant) (computectl_tenant_budget_used_ratio)", "{{tenant}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "GPU-hours counted against the budget",
                ("max by (tenant) (computectl_tenant_budget_used_gpu_hours)", "{{tenant}}"),
            )
        )
        .with_panel(
            rows(
                "Tenants whose new GPU pods are refused",
                "max by (tenant) (computectl_tenant_budget_stopped) == 1",
                width=12,
            )
        )
        .with_panel(
            rows(
                "Objects that differ from their spec",
                "max by (tenant, backend, object) (computectl_tenant_drift) == 1",
                width=12,
            )
        )
    )
