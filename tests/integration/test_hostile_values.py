"""Hostile but valid values in every text field a client can set (a node's drain reason and
finding, a result's evidence, values and version, an event, a tenant), stored on SQLite and
on PostgreSQL: sweeps keep running, every API route answers, the page and its data render,
and the CLI shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from compute.api import create_app
from compute.auth.testing import operator_headers
from compute.cli.main import cli
from compute.runtime import Runtime
from compute.testing import make_runtime
from compute.validation import MAX_USERS
from health import inputs

pytestmark = pytest.mark.integration

# Right-to-left marks, emoji with joiners, markup, quotes, format strings, backslashes,
# combining marks and wide characters: all printable, all must pass through untouched.
HOSTILE = "\u200f<script>alert('x')</script> \"q\" %s %n {0} \\n \\x1b 🧑‍🚀 Ünïcödé 中文 e\u0301 "


def sized(n: int) -> str:
    return (HOSTILE * (n // len(HOSTILE) + 1))[:n].rstrip() or "x"


@pytest.fixture(params=["sqlite", "postgresql"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    config: dict[str, Any] = {}
    if request.param == "postgresql":
        config["database_url"] = request.getfixturevalue("clean_postgres")
    runtime = make_runtime(tmp_path / "data", config=config, racks=2)
    runtime.sweep()
    yield runtime
    runtime.close()


def fill(client: TestClient, rt: Runtime) -> dict[str, str]:
    now = rt.clock.now().isoformat()
    values: dict[str, Any] = {
        sized(inputs.MAX_VALUE_KEY): sized(inputs.MAX_VALUE_TEXT),
        "int_max": inputs.INT_MAX,
        "int_min": inputs.INT_MIN,
        "float_max": inputs.FLOAT_MAX,
        "float_min": -inputs.FLOAT_MAX,
        "tiny": 5e-324,
        "flag": True,
    }
    values.update({f"k{i}": i for i in range(inputs.MAX_VALUES - len(values))})
    tail = "\nsecond line\tand a tab"
    evidence = sized(inputs.MAX_EVIDENCE - len(tail)) + tail
    report = [
        {
            "check": "xid",
            "version": "v" * 32,
            "status": "fail",
            "fatal": True,
            "at": now,
            "evidence": evidence,
            "values": values,
            # Every GPU the node has (an index beyond them is refused, test_validation_api).
            "gpus": list(range(client.get("/api/v1/nodes/gpu-002").json()["gpu_count"])),
        },
        {"check": "e" * 64, "version": "1", "status": "warn", "at": now, "evidence": HOSTILE},
    ]
    r = client.post("/api/v1/nodes/gpu-002/health", json=report)
    assert r.status_code == 202, r.text
    r = client.post("/api/v1/nodes/gpu-003/drain", json={"reason": sized(inputs.MAX_REASON)})
    assert r.status_code == 200, r.text
    tenant = "t" + "-x" * 19
    spec = {
        "name": tenant,
        "users": [*(f"u{i:03d}" + "_" * 28 for i in range(min(MAX_USERS, 50))), "a" * 32],
        "quotas": [{"pool": "training", "gpus": 100_000}],
        "gpu_hours_budget": 1e9,
        "max_wall_time_hours": 24 * 365,
    }
    r = client.put(f"/api/v1/tenants/{tenant}", json=spec)
    assert r.status_code == 200, r.text
    return {"node": "gpu-002", "tenant": tenant}


def walk(client: TestClient, names: dict[str, str]) -> None:
    doc = client.get("/openapi.json").json()
    pool = client.get("/api/v1/pools").json()["pools"][0]["name"]
    for path, ops in doc["paths"].items():
        if "get" not in ops or "{id}" in path or path.startswith("/api/v1/acceptance/"):
            continue  # incidents, tranches: none made here (each has tests of its own)
        kind = "tenant" if "/tenants/" in path else "pool" if "/pools/" in path else "node"
        url = path.replace("{name}", {**names, "pool": pool}[kind])
        url = url.replace("{tenant}", names["tenant"])
        if path == "/api/v1/sdc/reference":  # asks for a model and a software stack
            url += "?model=H100-SXM&stack=0123456789abcdef"
        if path == "/api/v1/floors/learned":  # asks for a model and a software stack
            url += "?model=H100-SXM&stack=driver%3D-%20cuda%3D-%20torch%3D-"
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        r.json()
    pages = ("/", "/api/v1/overview", "/healthz", "/metrics", "/docs", "/portal/ops")
    pages += tuple(f"/portal/ops/{p}" for p in ("tenants", "drains", "capacity", "audit"))
    pages += (f"/portal/t/{names['tenant']}", f"/portal/t/{names['tenant']}/requests")
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_hostile_values_are_stored_swept_served_and_shown(rt: Runtime) -> None:
    with TestClient(
        create_app(rt), raise_server_exceptions=True, headers=operator_headers(rt.store)
    ) as client:
        names = fill(client, rt)
        shown = client.get("/api/v1/nodes/gpu-002").json()
        assert any(r["values"].get("int_max") == inputs.INT_MAX for r in shown["results"])
        for _ in range(3):
            assert client.post("/api/v1/sweep").status_code == 200
        walk(client, names)
        node = client.get("/api/v1/nodes/gpu-003").json()
        assert node["drain_reason"].endswith(sized(inputs.MAX_REASON))
        events = client.get("/api/v1/events", params={"node": "gpu-003"}).json()["events"]
        assert any(sized(inputs.MAX_REASON) in e["reason"] for e in events)
    rt.close()
    env = {"COMPUTECTL_DATA_DIR": str(rt.settings.data_dir), "COLUMNS": "300"}
    if rt.settings.database_url:
        env["COMPUTECTL_DATABASE_URL"] = rt.settings.database_url
    runner = CliRunner()
    for args in (
        ["nodes", "show", "gpu-002"],
        ["nodes", "show", "gpu-003"],
        ["nodes", "list"],
        ["events"],
        ["tenants", "list"],
        ["tenants", "show", names["tenant"]],
        ["capacity"],
        ["nodes", "rma-report", "gpu-002"],
    ):
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        assert "\x1b[2J" not in result.output
