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
        .with_panel(
            series(
                "Fleet power by holder (tenants, idle, out of service)",
                (
                    "sum by (holder) (max by (holder, pool, gpu_model)"
                    " (rate(computectl_fleet_energy_joules_total[5m])))",
                    "{{holder}}",
                ),
                unit="watt",
                stacked=True,
                description="The fleet's measured energy rate split by who held the GPUs: "
                "the tenants' sum plus idle and out of service is the fleet's.",
            )
        )
        .with_panel(
            rows(
                "Facility energy per tenant over the last day (kWh, with PUE)",
                "sum by (tenant, pool, gpu_model) (max by (tenant, pool, gpu_model)"
                " (increase(computectl_tenant_facility_energy_joules_total[1d]))) / 3.6e6",
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
