"""Power: racks against their budgets, the forecast, and power caps."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import board, figure, rows, series


def power() -> Dashboard:
    return (
        board(
            "computectl-power",
            "computectl — power",
            "Rack draw against budget, the forecast, and GPU power caps that failed.",
        )
        .with_row(Row("Racks"))
        .with_panel(
            figure(
                "Racks over budget",
                "count(max by (rack) (computectl_rack_over_budget) == 1) or vector(0)",
            )
        )
        .with_panel(
            figure(
                "Racks forecast over budget",
                "count(max by (rack) (computectl_rack_power_forecast_watts)"
                " > max by (rack) (computectl_rack_power_budget_watts)) or vector(0)",
            )
        )
        .with_panel(
            figure("Fleet draw", "sum(max by (rack) (computectl_rack_power_watts))", unit="watt")
        )
        .with_panel(
            figure(
                "Fleet headroom",
                "sum(max by (rack) (computectl_rack_power_budget_watts))"
                " - sum(max by (rack) (computectl_rack_power_watts))",
                unit="watt",
            )
        )
        .with_panel(
            series(
                "Rack draw against budget",
                ("rack:computectl_power_budget_used:ratio", "{{rack}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Rack draw",
                ("max by (rack) (computectl_rack_power_watts)", "{{rack}}"),
                unit="watt",
            )
        )
        .with_panel(
            series(
                "Forecast against budget",
                ("rack:computectl_power_forecast_budget:ratio", "{{rack}}"),
                unit="percentunit",
                description="The rack's forecast draw over its budget: above 1, it is "
                "expected to exceed the budget (no new load goes there).",
            )
        )
        .with_panel(
            series(
                "Headroom per rack",
                ("rack:computectl_power_headroom_watts", "{{rack}}"),
                unit="watt",
            )
        )
        .with_row(Row("Caps"))
        .with_panel(
            series(
                "Power caps that failed, per hour",
                (
                    "sum(max without (instance, job)"
                    " (increase(computectl_power_cap_failures_total[1h])))",
                    "failed",
                ),
                description="Caps a node could not apply; computectl events says which and why.",
            )
        )
        .with_panel(
            rows(
                "Racks over budget now",
                "max by (rack) (computectl_rack_power_watts)"
                " and on (rack) (max by (rack) (computectl_rack_over_budget) == 1)",
            ).span(12)
        )
    )
