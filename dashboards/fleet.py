"""Fleet: GPUs and nodes by state, capacity per pool, what is out of service and why."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import board, figure, rows, series


def fleet() -> Dashboard:
    return (
        board(
            "computectl-fleet",
            "computectl — fleet",
            "GPUs and nodes by state and pool, and the nodes out of service.",
        )
        .with_row(Row("Capacity"))
        .with_panel(figure("GPUs installed", "max(computectl_gpus_installed)"))
        .with_panel(
            figure(
                "GPUs allocated",
                'sum(max by (pool, gpu_model) (computectl_gpus{state="allocated"}))',
            )
        )
        .with_panel(
            figure("GPUs idle", 'sum(max by (pool, gpu_model) (computectl_gpus{state="idle"}))')
        )
        .with_panel(
            figure(
                "GPUs out of service",
                'sum(max by (pool, gpu_model, state) (computectl_gpus{state!~"allocated|idle"}))',
            )
        )
        .with_panel(
            series(
                "GPUs by state",
                ("sum by (state) (max by (pool, gpu_model, state) (computectl_gpus))", "{{state}}"),
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Allocated share of in-service GPUs, per pool",
                ("pool:computectl_gpus_allocated:ratio", "{{pool}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Unavailable share per pool",
                ("pool:computectl_gpus_unavailable:ratio", "{{pool}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "GPUs by model",
                (
                    "sum by (gpu_model) (max by (pool, gpu_model, state) (computectl_gpus))",
                    "{{gpu_model}}",
                ),
            )
        )
        .with_row(Row("Nodes"))
        .with_panel(
            series(
                "Nodes by state",
                ("sum by (state) (max by (pool, state) (computectl_nodes))", "{{state}}"),
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Drain budget use per pool",
                ("max by (pool) (computectl_remediation_nodes)", "{{pool}} in use"),
                ("max by (pool) (computectl_drain_budget_nodes)", "{{pool}} budget"),
                ("max by (pool) (computectl_drain_deferred_nodes)", "{{pool}} waiting"),
            )
        )
        .with_panel(
            rows(
                "Nodes out of service",
                "max by (node, pool, state, owner, reason) (computectl_node_drain_info)",
                description="Every node out of service, the drain's reason and who owns it.",
            )
        )
        .with_panel(
            series(
                "Lifecycle events per hour",
                (
                    "sum by (kind) (max by (pool, kind) (increase(computectl_events_total[1h])))",
                    "{{kind}}",
                ),
                width=24,
            )
        )
    )
