"""The Grafana boards (built by dashboards/ with grafana-foundation-sdk) and the Prometheus
rules read only what computectl exports: the names a real scrape of the embedded default's
/metrics and a real `computectl node check --textfile` write, or a recording rule's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.cli.main import cli
from compute.services.leadership import Leadership
from compute.testing import make_runtime
from dashboards import build
from dashboards.names import board_expressions, exposition_names, metric_names

RULES = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus" / "computectl.rules.yml"
# What Prometheus and the node exporter store themselves, which the boards read beside ours.
THEIRS = {"up", "node_textfile_scrape_error", "node_textfile_mtime_seconds", "ALERTS"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tmp = tmp_path_factory.mktemp("scrape")
    rt = make_runtime(tmp / "data", config={"server": {"metrics_public": True}})
    # As serve runs it: under a lease, so the replica's own gauge is in the scrape.
    rt.leadership = Leadership(rt.store, ttl=30)
    try:
        rt.sweep()
        assert rt.datacenter is not None
        node = sorted(rt.datacenter.fleet.nodes)[0]
        with TestClient(create_app(rt)) as client:
            r = client.get("/metrics")
        assert r.status_code == 200, r.text
        body = r.text
    finally:
        rt.close()
    textfile = tmp / "node.prom"
    ran = CliRunner().invoke(
        cli,
        [
            *("--data-dir", str(tmp / "node"), "node", "check", "--source", "simulated"),
            *("--node", node, "--textfile", str(textfile)),
        ],
    )
    assert ran.exit_code == 0, ran.output
    return exposition_names(body) | exposition_names(textfile.read_text())


def rules() -> list[dict[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def recorded() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def test_the_committed_boards_are_what_the_code_builds() -> None:
    """Regenerate with `python -m dashboards.build` when a board changes."""
    for path, text in build.files().items():
        assert path.exists(), f"{path.name} missing: run python -m dashboards.build"
        assert path.read_text() == text, f"{path.name} is stale: run python -m dashboards.build"
    on_disk = {p.name for p in build.OUT.glob("*.json")}
    assert on_disk == {p.name for p in build.files()}, "a board file nothing builds"


def test_each_board_reads_the_chosen_prometheus_with_unique_panel_ids() -> None:
    for uid, model in build.models().items():
        board = json.loads(build.render(model))
        assert board["uid"] == uid
        assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert panel["targets"], panel["title"]


def test_every_board_query_reads_exported_or_recorded_metrics(exported: set[str]) -> None:
    known = exported | recorded() | THEIRS
    for uid, model in build.models().items():
        for title, expr in board_expressions(json.loads(build.render(model))):
            names = metric_names(expr)
            assert names, f"{uid} {title}: {expr} reads no metric"
            missing = names - known
            assert not missing, f"{uid} {title}: {sorted(missing)} neither exported nor recorded"


def test_every_rule_reads_exported_or_recorded_metrics(exported: set[str]) -> None:
    known = exported | recorded()
    for rule in rules():
        missing = metric_names(rule["expr"]) - known
        assert not missing, f"{rule.get('record') or rule.get('alert')}: {sorted(missing)}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (state) (computectl_gpus)", {"computectl_gpus"}),
        (
            'histogram_quantile(0.99, max by (pool, le) (rate(x_bucket{a="b(c)"}[15m])))',
            {"x_bucket"},
        ),
        ("a / on (rack) group_left (pool) b > 1e3 and c offset 5m", {"a", "b", "c"}),
        ("time() - max(t) > bool 300", {"t"}),
        ('pool:ratio{pool=~"$pool"} * ${scale}', {"pool:ratio"}),
        ("count(x == 1) or vector(0)", {"x"}),
        ("sum without (instance, job) (y)", {"y"}),
    ],
)
def test_metric_names_in_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
