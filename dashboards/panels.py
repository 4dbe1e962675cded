"""Shared panel shapes: every panel reads the board's Prometheus data source variable."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Full width is 24 columns; panels of 12 sit two to a row.
HALF, FULL, HEIGHT = 12, 24, 8


def query(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q


def _targets(exprs: tuple[tuple[str, str], ...], instant: bool) -> list[Builder[object]]:
    return [
        query(expr, legend, chr(ord("A") + i), instant=instant)
        for i, (expr, legend) in enumerate(exprs)
    ]


def series(
    title: str,
    *exprs: tuple[str, str],
    unit: str = "short",
    description: str = "",
    width: int = HALF,
    stacked: bool = False,
) -> timeseries.Panel:
    p = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .targets(_targets(exprs, instant=False))  # type: ignore[arg-type]
    )
    if description:
        p = p.description(description)
    if stacked:
        p = p.fill_opacity(30)
    return p


def rows(title: str, expr: str, *, description: str = "", width: int = FULL) -> table.Panel:
    """A table of the series an instant query returns, one row each, labels as columns."""
    p = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .span(width)
        .height(HEIGHT)
        .with_target(query(expr, instant=True).format(PromQueryFormat.TABLE))
    )
    return p.description(description) if description else p


def figure(title: str, expr: str, *, unit: str = "short", description: str = "") -> stat.Panel:
    p = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(4)
        .with_target(query(expr, instant=True))
    )
    return p.description(description) if description else p


def board(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["computectl", "gpu"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("utc")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )


def numbered(built: dashboard.Dashboard) -> dict[str, object]:
    """The board as Grafana's JSON model, panels numbered in order (ids must be unique in a
    board; the SDK leaves them unset)."""
    model = built.build()
    for i, panel in enumerate(model.panels or [], start=1):
        panel.id_val = i
    out: dict[str, object] = model.to_json()
    return out
