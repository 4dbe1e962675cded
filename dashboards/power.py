"""Power: racks against their budgets, the forecast, and power caps."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import board, figure, rows, series


def power() -> Dashboard:
    return (
        board(
            "computectl-power",
            "computectl — power",
            "Rack and room draw against budget, the forecast, nodes' power and GPU power caps.",
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
        .with_panel(
            series(
                "Rack limit (budget, or cooling limit where lower)",
                ("max by (rack) (computectl_rack_power_limit_watts)", "{{rack}}"),
                unit="watt",
            )
        )
        .with_panel(
            series(
                "Room draw against limit",
                (
                    "max by (room) (computectl_room_power_watts)"
                    " / max by (room) (computectl_room_power_limit_watts)",
                    "{{room}}",
                ),
                unit="percentunit",
            )
        )
        .with_panel(
            rows(
                "Racks over budget now",
                "max by (rack) (computectl_rack_power_watts)"
                " and on (rack) (max by (rack) (computectl_rack_over_budget) == 1)",
                width=12,
            )
        )
        .with_row(Row("Nodes and caps"))
        .with_panel(
            series(
                "GPU draw per rack, from the nodes' reports",
                (
                    "sum by (rack) (max by (node, rack) (computectl_node_gpu_power_watts))",
                    "{{rack}}",
                ),
                unit="watt",
            )
        )
        .with_panel(
            rows(
                "Nodes whose GPUs draw most",
                "topk(10, max by (node, rack) (computectl_node_gpu_power_watts))",
                width=12,
            )
        )
        .with_panel(
            series(
                "GPU power caps by state",
                ("max by (state) (computectl_gpu_power_caps)", "{{state}}"),
                description="failed: a node could not apply the cap; revert_failed: nor undo "
                "it. computectl power caps lists them.",
            )
        )
        .with_panel(
            figure(
                "GPU power caps failed",
                'sum(max by (state) (computectl_gpu_power_caps{state=~"failed|revert_failed"}))',
            )
        )
        .with_panel(
            figure(
                "Nodes reporting power",
                "count(computectl_node_gpu_power_watts)",
            )
        )
    )
