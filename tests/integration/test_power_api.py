"""Power caps through the API on the simulated datacenter, the node agent's code posting
for its node (health/power.py over HTTP): cap -> the agent applies -> read back -> revert;
expiry; a node that cannot apply; the rate limit; hostile power reports."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.api import create_app
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.testing import make_runtime
from health.power import exchange
from health.simulated import SimulatedTelemetry

pytestmark = pytest.mark.integration
V1 = "/api/v1"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient, dict[str, dict[str, str]]]]:
    rt = make_runtime(tmp_path / "data", racks=1, nodes_per_rack=4)
    rt.sweep()
    who = {
        "operator": bearer(token_for(rt.store, "operator")),
        "viewer": bearer(token_for(rt.store, "viewer")),
        **{n: bearer(token_for(rt.store, "node", node=n)) for n in ("gpu-001", "gpu-002")},
    }
    with TestClient(create_app(rt)) as client:
        yield rt, client, who
    rt.close()


def agent(rt: Runtime, client: TestClient, who: dict[str, dict[str, str]], node: str) -> Any:
    """One round of ``node``'s agent, posting with the node's own credential."""
    assert rt.datacenter is not None
    source = SimulatedTelemetry(rt.datacenter.fleet_access).power_source(node)

    def post(body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(f"{V1}/nodes/{node}/power", json=body, headers=who[node])
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    return exchange(source, post)


def caps(client: TestClient, who: dict[str, dict[str, str]], **query: Any) -> list[Any]:
    r = client.get(f"{V1}/power/caps", params=query, headers=who["viewer"])
    assert r.status_code == 200
    found: list[Any] = r.json()["caps"]
    return found


def limits(rt: Runtime, node: str) -> list[float]:
    assert rt.datacenter is not None
    with rt.datacenter.session():
        fleet = rt.datacenter.fleet
        n = fleet.nodes[node]
        return [fleet.power_limit(n, i) for i in range(n.gpu_count)]


def test_cap_applied_by_the_agent_read_back_and_reverted(served: Any) -> None:
    rt, client, who = served
    body = {"nodes": ["gpu-001"], "watts": 120.0, "gpus": [0, 2], "reason": "rack r01 hot"}
    r = client.post(f"{V1}/power/caps", json=body, headers=who["operator"])
    assert r.status_code == 201, r.text
    (cap,) = r.json()["caps"]
    assert cap["state"] == "pending" and cap["expires_at"] is not None  # the default: 4 h
    outcomes, _ = agent(rt, client, who, "gpu-001")
    assert [o["ok"] for o in outcomes] == [True]
    (cap,) = caps(client, who)
    # 120 W is below the H100's 200 W minimum: clamped, and read back at 200 W.
    assert cap["state"] == "applied" and cap["before"] == {"0": 700.0, "2": 700.0}
    assert cap["clamped"] == {"0": 200.0, "2": 200.0} and cap["after"] == cap["clamped"]
    assert limits(rt, "gpu-001") == [200.0, 700.0, 200.0] + [700.0] * 5
    shown = client.get(f"{V1}/nodes/gpu-001/power", headers=who["gpu-001"]).json()
    gpus = shown["reading"]["gpus"]
    assert gpus[0]["limit_watts"] == 200.0 and gpus[0]["power_watts"] <= 200.0
    assert shown["reading"]["node_source"] == "simulated" and shown["series"]
    r = client.post(
        f"{V1}/power/caps/revert", json={"caps": [cap["id"]], "reason": "cooler now"},
        headers=who["operator"],
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["caps"][0]["state"] == "reverting"
    agent(rt, client, who, "gpu-001")
    assert caps(client, who) == []
    (done,) = caps(client, who, all=True)
    assert done["state"] == "reverted" and done["after"] == {"0": 700.0, "2": 700.0}
    assert limits(rt, "gpu-001") == [700.0] * 8
    actions = [a.action for a in rt.store.audit(target="node/gpu-001")]
    assert {"power.cap", "power.apply", "power.revert"} <= set(actions)


def test_expiry_reverts_through_the_sweep(served: Any) -> None:
    rt, client, who = served
    body = {"rack": "r01", "watts": 450.0, "reason": "budget", "duration_seconds": 600.0}
    made = client.post(f"{V1}/power/caps", json=body, headers=who["operator"]).json()["caps"]
    assert len(made) == 4
    rt.sweep()  # the simulated nodes' agents apply theirs
    assert {c["state"] for c in caps(client, who)} == {"applied"}
    assert limits(rt, "gpu-003") == [450.0] * 8
    assert rt.datacenter is not None
    rt.datacenter.advance(900)
    rt.sweep()  # expired: reverted, and the agents restore the limits in the same sweep
    assert caps(client, who) == []
    assert {c["state"] for c in caps(client, who, all=True)} == {"reverted"}
    assert limits(rt, "gpu-003") == [700.0] * 8


def test_a_node_that_cannot_apply_says_why(served: Any) -> None:
    rt, client, who = served
    rt.datacenter.inject("gpu-002", "xid79", gpu=1)  # GPU 1 falls off the bus
    body = {"nodes": ["gpu-002"], "watts": 300.0, "gpus": [1], "reason": "test"}
    assert client.post(f"{V1}/power/caps", json=body, headers=who["operator"]).status_code == 201
    agent(rt, client, who, "gpu-002")
    (cap,) = caps(client, who)
    assert cap["state"] == "failed" and cap["detail"] == "GPU 1 is not on this node"
    metrics = client.get("/metrics", headers=who["operator"]).text
    assert 'computectl_gpu_power_caps{state="failed"} 1.0' in metrics


def test_rate_limited_per_node(served: Any) -> None:
    rt, client, who = served
    limit = rt.settings.power.cap_rate_limit_per_hour
    body = {"nodes": ["gpu-004"], "watts": 500.0, "reason": "flap"}
    for _ in range(limit):
        assert (
            client.post(f"{V1}/power/caps", json=body, headers=who["operator"]).status_code == 201
        )
    r = client.post(f"{V1}/power/caps", json=body, headers=who["operator"])
    assert r.status_code == 429 and "cap_rate_limit_per_hour" in r.json()["detail"]
    # Superseded one by one: one cap active, holding the limits before the first.
    (active,) = caps(client, who)
    assert active["state"] == "pending"


def test_a_node_posts_only_for_itself(served: Any) -> None:
    _, client, who = served
    body = {"gpus": [{"index": 0, "power_watts": 100.0}]}
    r = client.post(f"{V1}/nodes/gpu-002/power", json=body, headers=who["gpu-001"])
    assert r.status_code == 403


FINITE = st.floats(-10, 6000, allow_nan=False)
ANY_NUM = st.one_of(FINITE, st.just(math.nan), st.just(math.inf), st.integers(-5, 10**6))
GPU = st.fixed_dictionaries(
    {"index": st.integers(-1, 40), "power_watts": ANY_NUM},
    optional={
        "limit_watts": ANY_NUM | st.none(),
        "min_limit_watts": ANY_NUM | st.none(),
        "max_limit_watts": ANY_NUM | st.none(),
        "default_limit_watts": ANY_NUM | st.none(),
        "uuid": st.text(max_size=120),
        "extra": st.integers(),
    },
)
BODY = st.fixed_dictionaries(
    {"gpus": st.lists(GPU, max_size=40)},
    optional={
        "node_watts": ANY_NUM | st.none(),
        "node_source": st.text(max_size=40),
        "node_error": st.text(max_size=300),
        "outcomes": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.integers(-1, 3),
                    "action": st.sampled_from(["apply", "revert", "x"]),
                    "ok": st.booleans(),
                }
            ),
            max_size=3,
        ),
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODY)
def test_hostile_power_reports_are_refused_or_stored_sane(served: Any, body: Any) -> None:
    from json import dumps

    _, client, who = served
    # Encoded here: NaN and Infinity reach the server as a hostile client sends them.
    r = client.post(
        f"{V1}/nodes/gpu-001/power", content=dumps(body),
        headers={**who["gpu-001"], "content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        shown = client.get(f"{V1}/nodes/gpu-001/power", headers=who["operator"]).json()
        for g in shown["reading"]["gpus"]:
            assert 0 <= g["index"] < 8 and 0 <= g["power_watts"] <= 5000
            lo, hi = g["min_limit_watts"], g["max_limit_watts"]
            assert lo is None or hi is None or lo <= hi
