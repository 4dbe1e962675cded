"""The CLI through a server: a refusal is the same error and exit code as on the data
directory, and whatever a hostile server answers (not JSON, too large, the wrong shape, a
redirect, nothing at all) is one line, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.cli.main import main
from compute.client.contexts import Target
from compute.client.errors import BadAnswer, Unreachable, error_class
from compute.client.remote import RemoteClient
from compute.errors import (
    BackendError,
    ComputeError,
    ConfigError,
    InvalidInput,
    LeaseHeld,
    NotFoundError,
    NotLeading,
    PartialError,
    RefusedError,
    StaleWrite,
    StoreFailure,
)

NODE = {
    "name": "gpu-001",
    "pool": "training",
    "rack": "r01",
    "gpu_model": "H100-SXM",
    "gpu_count": 8,
    "state": "in_service",
    "state_since": "2026-01-01T00:00:00+00:00",
    "drain_reason": None,
    "drain_owner": None,
    "drain_actor": None,
    "deferred_reason": None,
    "jobs_running": 1,
    "gpus_allocated": 8,
    "backend_state": "allocated",
    "power_watts": 700.0,
    "last_seen": None,
    "last_checked_at": None,
    "finding": None,
    "burn_in_failures": 0,
}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


class Hostile(ThreadingHTTPServer):
    reply: Reply


class Handler(BaseHTTPRequestHandler):
    server: Hostile

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.reply
        reply.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[Hostile]:
    httpd = Hostile(("127.0.0.1", 0), Handler)
    httpd.reply = Reply()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: Hostile) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def client(server: Hostile, **kwargs: Any) -> RemoteClient:
    return RemoteClient(Target(url(server), "cct_test_token", None, explicit=True), **kwargs)


def run(
    server_url: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(["--server", server_url, *args])
    out, err = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out, err


def problem(status: int, code: str, detail: str) -> bytes:
    doc = {"type": "about:blank", "title": "x", "status": status, "detail": detail, "code": code}
    return json.dumps(doc).encode()


@pytest.fixture(autouse=True)
def no_client_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    monkeypatch.setenv("COMPUTECTL_CLIENT_CONFIG", "/nonexistent/computectl/config.toml")
    monkeypatch.delenv("COMPUTECTL_TOKEN", raising=False)
    monkeypatch.delenv("COMPUTECTL_CONTEXT", raising=False)


ERRORS = [
    NotFoundError,
    RefusedError,
    InvalidInput,
    ConfigError,
    BackendError,
    PartialError,
    StoreFailure,
    StaleWrite,
    NotLeading,
    LeaseHeld,
]


@pytest.mark.parametrize("cls", ERRORS)
def test_a_problem_document_is_the_same_error_and_exit_code(
    server: Hostile, capsys: pytest.CaptureFixture[str], cls: type[ComputeError]
) -> None:
    server.reply = Reply(cls.http_status, problem(cls.http_status, cls.code, "unknown node 'x'"))
    with pytest.raises(cls, match=r"^unknown node 'x'$"):
        client(server).node("x")
    code, out, err = run(url(server), ["nodes", "show", "gpu-001"], capsys)
    assert (code, out, err) == (cls.exit_code, "", "error: unknown node 'x'\n")


def test_unauthorized_says_how_to_give_a_token(
    server: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(401, problem(401, "unauthorized", "a token is needed"))
    code, _, err = run(url(server), ["nodes", "list"], capsys)
    assert code == 2 and err.startswith("error: a token is needed (give a token: --token")


def test_a_missing_route_is_named(server: Hostile, capsys: pytest.CaptureFixture[str]) -> None:
    server.reply = Reply(404, problem(404, "not_found", "Not Found"))
    code, _, err = run(url(server), ["nodes", "retire", "gpu-001"], capsys)
    assert code == 2
    assert err == (
        "error: the server has no POST /api/v1/nodes/gpu-001/retire "
        "(a control plane older than this computectl?)\n"
    )


def test_the_request_carries_the_token_and_the_api_shapes(server: Hostile) -> None:
    server.reply = Reply(200, json.dumps({"nodes": [NODE], "refused": []}).encode())
    c = client(server)
    assert c.resume(["gpu-[001-002]"], force=True, skip_burn_in=False)["nodes"] == [NODE]
    method, path, headers, body = server.reply.seen[-1]
    assert (method, path) == ("POST", "/api/v1/nodes/resume")
    assert headers["Authorization"] == "Bearer cct_test_token"
    assert json.loads(body) == {"nodes": ["gpu-[001-002]"], "force": True, "skip_burn_in": False}
    server.reply = Reply(200, json.dumps({"events": []}).encode())
    assert c.events("gpu-001", ["drain", "resume"], 7) == []
    assert server.reply.seen[-1][1] == "/api/v1/events?limit=7&node=gpu-001&kind=drain&kind=resume"


def test_unreachable_is_one_line_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(f"http://127.0.0.1:{port}", ["nodes", "list"], capsys)
    assert (code, out) == (3, "")
    assert err == f"error: cannot reach http://127.0.0.1:{port}: connection refused\n"


def test_a_redirect_is_not_followed(server: Hostile, capsys: pytest.CaptureFixture[str]) -> None:
    server.reply = Reply(302, b"", {"Location": "http://evil.example/api/v1/nodes"})
    with pytest.raises(Unreachable, match=r"redirects GET /api/v1/nodes to 'http://evil\.exa"):
        client(server).nodes(None, None)
    assert len(server.reply.seen) == 1


def test_an_oversized_answer_is_refused(server: Hostile) -> None:
    server.reply = Reply(200, json.dumps({"nodes": [NODE] * 50}).encode())
    with pytest.raises(BadAnswer, match="larger than 1000 bytes"):
        client(server, max_answer_bytes=1000).nodes(None, None)


def test_remote_refuses_what_the_api_cannot_do_yet(
    server: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["serve"], ["demo"], ["sim", "inject", "gpu-001", "xid79"], ["config", "show"]):
        code, _, err = run(url(server), args, capsys)
        assert code == 2 and err.count("\n") == 1 and "works here only" in err, args
    code, _, err = run(url(server), ["nodes", "pair-test", "training"], capsys)
    assert code == 2 and "works on the data directory only" in err


def test_error_codes_name_only_computectl_errors() -> None:
    assert error_class("not_found") is NotFoundError
    assert error_class("unreachable") is None  # the client's own, never a server's
    assert error_class("__class__") is None and error_class("bad code") is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def mutated_node(draw: st.DrawFn) -> dict[str, Any]:
    node = dict(NODE)
    key = draw(st.sampled_from(sorted(NODE)))
    if draw(st.booleans()):
        node.pop(key)
    else:
        node[key] = draw(JSON)
    return node


@st.composite
def hostile_answers(draw: st.DrawFn) -> Reply:
    status = draw(st.sampled_from([200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 422, 500]))
    kind = draw(st.sampled_from(["bytes", "json", "nodes", "problem"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "nodes":
        body = json.dumps({"nodes": [mutated_node(draw)]}).encode()
    else:
        doc = draw(st.dictionaries(st.sampled_from(["detail", "code", "status"]), JSON))
        body = json.dumps(doc).encode()
    ctype = draw(st.sampled_from(["application/json", "text/html", "application/problem+json"]))
    return Reply(status, body, {"Content-Type": ctype})


COMMANDS = [
    ["nodes", "list"],
    ["nodes", "show", "gpu-001"],
    ["nodes", "drain", "gpu-00[1-2]", "--reason", "r"],
    ["nodes", "resume", "gpu-001"],
    ["nodes", "rma-report", "gpu-001"],
    ["events"],
    ["capacity"],
    ["sweep"],
    ["pools", "list"],
    ["pools", "report", "training"],
    ["incidents", "show", "1"],
    ["tenants", "list"],
    ["tenants", "show", "acme"],
    ["tenants", "suspend", "acme"],
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reply=hostile_answers(), output=st.sampled_from(["table", "json"]))
def test_any_answer_to_nodes_list_is_output_or_one_line(
    server: Hostile, capsys: pytest.CaptureFixture[str], reply: Reply, output: str
) -> None:
    server.reply = reply
    code, out, err = run(url(server), ["nodes", "list", "-o", output], capsys)
    assert "Traceback" not in out + err
    if code == 0:
        assert err == ""
        return
    assert code in (2, 3, 4, 5), (code, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("error: "), err


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    reply=hostile_answers(),
    args=st.sampled_from(COMMANDS),
    output=st.sampled_from(["table", "json"]),
)
def test_any_answer_to_any_command_is_output_or_one_line(
    server: Hostile, capsys: pytest.CaptureFixture[str], reply: Reply, args: list[str], output: str
) -> None:
    server.reply = reply
    takes_output = args[0] not in ("tenants",) or args[1] in ("list", "show")
    code, out, err = run(url(server), [*args, *(["-o", output] if takes_output else [])], capsys)
    assert "Traceback" not in out + err
    if code != 0:
        assert code in (2, 3, 4, 5), (args, code, err)
        assert err.startswith("error: ") and "Traceback" not in err, err
        # A batch may print what was done before its refusals; anything else prints nothing.
        assert err.count("\n") == 1 or args[1] in ("drain", "resume"), err


def test_the_remote_path_loads_no_server_library() -> None:
    """`computectl --server URL nodes list` starts without pydantic, SQLAlchemy or FastAPI."""
    code = (
        "import sys\n"
        "from compute.cli.main import main\n"
        "try:\n"
        "    main(['--server', 'http://127.0.0.1:9', 'nodes', 'list', '-o', 'json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('fastapi', 'sqlalchemy', 'pydantic', 'starlette', 'kubernetes', 'rich')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "             or m.startswith(('compute.runtime', 'compute.services', 'compute.store'))))\n"
    )
    env = {"COMPUTECTL_CLIENT_CONFIG": "/nonexistent/config.toml", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert out.stderr.startswith("error: cannot reach http://127.0.0.1:9")
