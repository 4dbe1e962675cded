"""Health: remediation (detection to drain, repair, brakes), the control plane's own health
(sweeps, leadership) and the node checks' textfile results."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import board, figure, rows, series


def health() -> Dashboard:
    return (
        board(
            "computectl-health",
            "computectl — health",
            "Remediation, the control plane's sweeps and leadership, and the node checks.",
        )
        .with_row(Row("Remediation"))
        .with_panel(
            series(
                "Detection to drain (p50, p99 over 15 min; target p99 < 2 s)",
                ("pool:computectl_detection_to_drain_seconds:p99_15m", "{{pool}} p99"),
                ("pool:computectl_detection_to_drain_seconds:p50_15m", "{{pool}} p50"),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Time to repair (median over 7 days)",
                ("pool:computectl_time_to_repair_seconds:p50_7d", "{{pool}}"),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Drains per hour by cause",
                ("sum by (cause) (pool_cause:computectl_drains:increase1h)", "{{cause}}"),
            )
        )
        .with_panel(
            series(
                "Drains per hour by check",
                (
                    "sum by (check) (max by (pool, check) (increase(computectl_drains_total[1h])))",
                    "{{check}}",
                ),
            )
        )
        .with_panel(
            rows(
                "Brakes engaged (open incidents)",
                "max by (scope_kind, scope, pool) (computectl_brake_engaged)",
                width=12,
            )
        )
        .with_panel(
            series(
                "Drains held by a brake, and observe mode's would-be actions, per hour",
                ("max by (pool) (increase(computectl_drains_held_total[1h]))", "{{pool}} held"),
                (
                    "max by (pool, action) (increase(computectl_would_act_total[1h]))",
                    "{{pool}} would {{action}}",
                ),
            )
        )
        .with_panel(
            rows("Pools in observe mode", "max by (pool) (computectl_pool_observe) == 1", width=12)
        )
        .with_row(Row("Control plane"))
        .with_panel(
            figure(
                "Seconds since a sweep reached every backend",
                "time() - max(computectl_last_good_sweep_timestamp_seconds)",
                unit="s",
            )
        )
        .with_panel(figure("Nodes the last sweep skipped", "max(computectl_sweep_nodes_skipped)"))
        .with_panel(
            figure("Sweep duration", "max(computectl_last_sweep_duration_seconds)", unit="s")
        )
        .with_panel(
            figure(
                "Backends not answering",
                "count(max by (backend) (computectl_sweep_backend_up) == 0) or vector(0)",
            )
        )
        .with_panel(
            series(
                "Leader lease: seconds left, and which replica leads",
                (
                    "max by (lease, holder) (computectl_leader_lease_expires_timestamp_seconds)"
                    " - time()",
                    "{{lease}} {{holder}}",
                ),
                ("computectl_replica_leading", "{{instance}} leads"),
            )
        )
        .with_row(Row("Node checks (node exporter's textfile collector)"))
        .with_panel(
            rows(
                "Checks failing or warning",
                "max by (node, check, suite) (computectl_node_check_status) > 0",
                description="0 pass, 1 warn, 2 fail, from `computectl node check --textfile`.",
                width=12,
            )
        )
        .with_panel(
            rows(
                "Fatal findings",
                "max by (node, check) (computectl_node_check_fatal) == 1",
                width=12,
            )
        )
        .with_panel(
            series(
                "Oldest node check (seconds)",
                ("time() - min(computectl_node_check_timestamp_seconds)", "oldest"),
                ("max(computectl_node_check_duration_seconds)", "longest run"),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Textfiles node exporter could not read",
                ("sum(node_textfile_scrape_error)", "errors"),
            )
        )
    )
