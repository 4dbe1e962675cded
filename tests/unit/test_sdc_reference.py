"""The fleet's SDC reference: the checksum most passing nodes of a model and stack report,
each node once (its newest), at least min_nodes agreeing, no reference on a tie; served at
GET /api/v1/sdc/reference to a node's credential; and the node check reads it over HTTP."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from compute.api.app import create_app
from compute.auth.testing import bearer, token_for
from compute.runtime import Runtime
from compute.services.sdc_reference import fleet_reference
from compute.store.sdc import SdcPass
from compute.testing import EPOCH, make_runtime, result
from health.checks.sdc import SdcReference
from health.reporting import fetch_sdc_reference
from health.result import CheckResult

MODEL, STACK = "NVIDIA H200", "0123456789abcdef"
A, B, C = "a" * 64, "b" * 64, "c" * 64


def row(node: str, checksum: str, model: str = MODEL, stack: str = STACK, age: int = 0) -> SdcPass:
    values = {"model": model, "stack": stack, "checksum": checksum}
    return SdcPass(node, EPOCH - timedelta(hours=age), values)


def test_most_nodes_win_each_node_counted_once_by_its_newest() -> None:
    rows = [row("n1", A), row("n2", A), row("n3", B), row("n3", B), row("n3", B)]
    ref = fleet_reference(rows, MODEL, STACK, 2)
    assert (ref.checksum, ref.nodes, ref.reporting_nodes, ref.answers) == (A, 2, 3, 2)
    assert ref.why == "2 of 3 node(s) agree (2 checksums)"
    # n1's newest says B (rows come newest first): now B leads.
    ref = fleet_reference([row("n1", B), *rows], MODEL, STACK, 2)
    assert (ref.checksum, ref.nodes) == (B, 2)


def test_no_reference_when_too_few_agree_on_a_tie_or_for_another_key() -> None:
    assert fleet_reference([row("n1", A)], MODEL, STACK, 2).why == (
        "1 node(s) agree; a reference needs 2"
    )
    assert fleet_reference([row("n1", A)], MODEL, STACK, 1).checksum == A
    tie = fleet_reference([row("n1", A), row("n2", B)], MODEL, STACK, 1)
    assert tie.checksum is None and tie.why.startswith("no majority: 2 checksums")
    others = [row("n1", A, model="H100"), row("n2", A, stack="f" * 16)]
    none = fleet_reference(others, MODEL, STACK, 1)
    assert (none.checksum, none.reporting_nodes) == (None, 0)
    assert none.why == "no passing SDC result for this model and stack yet"


@given(
    st.lists(
        st.tuples(st.sampled_from(["n1", "n2", "n3", "n4", "n5"]), st.sampled_from([A, B, C]))
    ),
    st.integers(1, 4),
)
def test_a_reference_is_always_the_strict_leader_of_enough_nodes(
    reports: list[tuple[str, str]], min_nodes: int
) -> None:
    ref = fleet_reference([row(n, c) for n, c in reports], MODEL, STACK, min_nodes)
    newest: dict[str, str] = {}
    for n, c in reports:
        newest.setdefault(n, c)
    counts = Counter(newest.values())
    if ref.checksum is not None:
        assert counts[ref.checksum] == ref.nodes >= min_nodes
        assert all(v < ref.nodes for k, v in counts.items() if k != ref.checksum)
    assert ref.reporting_nodes == len(newest)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    runtime.sweep()
    yield runtime
    runtime.close()


def sdc(node: str, checksum: str, status: str = "pass", stack: str = STACK) -> CheckResult:
    values = {"model": MODEL, "stack": stack, "checksum": checksum}
    return result(node, "sdc", status, suite="burnin", values=values, at=EPOCH)


def test_the_route_serves_stored_passing_results_to_a_node(rt: Runtime) -> None:
    with rt.store.transaction() as tx:
        tx.add_results(
            [
                sdc("gpu-001", A),
                sdc("gpu-002", A),
                sdc("gpu-003", B),
                # Failing results never count, however many.
                sdc("gpu-004", B, "fail"),
                sdc("gpu-005", B, "fail"),
            ]
        )
    node = bearer(token_for(rt.store, "node", node="gpu-009"))
    with TestClient(create_app(rt)) as client:
        url = "/api/v1/sdc/reference"
        got = client.get(url, params={"model": MODEL, "stack": STACK}, headers=node)
        assert got.status_code == 200, got.text
        assert got.json() == {
            "model": MODEL,
            "stack": STACK,
            "checksum": A,
            "nodes": 2,
            "reporting_nodes": 3,
            "answers": 2,
            "why": "2 of 3 node(s) agree (2 checksums)",
        }
        other = client.get(url, params={"model": MODEL, "stack": "f" * 16}, headers=node)
        assert other.json()["checksum"] is None
        for bad in ({"model": MODEL, "stack": "XYZ"}, {"model": "", "stack": STACK}, {}):
            refused = client.get(url, params=bad, headers=node)
            assert refused.status_code == 422
            assert refused.json()["code"] == "invalid_input"


class Answer(BaseHTTPRequestHandler):
    body = b"{}"
    status = 200
    seen: list[str] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_node_reads_the_reference_over_http(server: str) -> None:
    Answer.body = json.dumps({"checksum": A, "nodes": 4}).encode()
    assert fetch_sdc_reference(server, MODEL, STACK) == SdcReference(A, 4)
    assert Answer.seen[-1] == f"/api/v1/sdc/reference?model=NVIDIA+H200&stack={STACK}"
    Answer.body = json.dumps({"checksum": None, "nodes": 0}).encode()
    assert fetch_sdc_reference(server, MODEL, STACK) is None
    with pytest.raises(LookupError):
        fetch_sdc_reference("http://127.0.0.1:9", MODEL, STACK, timeout=2)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=70),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids),
        max_leaves=6,
    )
    | st.fixed_dictionaries(
        {"checksum": st.sampled_from([A, "A" * 64, "x", None]), "nodes": st.integers(-1, 3)}
    )
)
def test_any_answer_is_a_reference_none_or_a_lookup_error(server: str, answer: object) -> None:
    Answer.body = json.dumps(answer).encode()
    try:
        got = fetch_sdc_reference(server, MODEL, STACK)
    except LookupError:
        return
    assert got is None or (got.checksum == A and got.nodes >= 1)
