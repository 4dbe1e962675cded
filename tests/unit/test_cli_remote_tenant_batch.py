"""`tenants plan|apply DIR` through --server: every spec in one request of the batch API,
each file checked first (a bad file calls nothing), the server's refusals printed beside
what it did (exit 4), none done: the refusal (exit 2); bodies too large for one request
go in several, and the answer is checked before anything is printed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute.client import remote
from compute.client.remote import _parts
from tests.unit.test_cli_remote import Handler, Hostile, Reply, no_client_config, problem, run, url

__all__ = ["no_client_config"]  # autouse: no client config or token of the machine's


@pytest.fixture
def server() -> Iterator[Hostile]:
    httpd = Hostile(("127.0.0.1", 0), Handler)
    httpd.reply = Reply()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def specs(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / f"{name}.toml").write_text(f'[tenant]\nname = "{name}"\n')
    return tmp_path


def answer(done: list[str], refused: tuple[str, ...] = ()) -> bytes:
    return json.dumps(
        {
            "tenants": [{"tenant": n, "changes": []} for n in done],
            "refused": [
                {"tenant": n, "code": "invalid_input", "detail": f"{n}: bad"} for n in refused
            ],
        }
    ).encode()


def test_every_spec_in_one_request(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(body=answer(["alpha-lab", "beta-lab"]))
    code, out, err = run(
        url(server), ["tenants", "apply", str(specs(tmp_path, "alpha-lab", "beta-lab"))], capsys
    )
    assert (code, err) == (0, "")
    assert [(m, p) for m, p, _h, _b in server.reply.seen] == [
        ("POST", "/api/v1/tenants/batch/apply")
    ]
    sent = json.loads(server.reply.seen[0][3])
    assert sent == {"specs": [{"name": "alpha-lab"}, {"name": "beta-lab"}]}
    assert "2 tenant(s) applied: 0 with changes, 2 unchanged" in out


def test_the_servers_refusals_are_printed_beside_what_it_did(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(body=answer(["alpha-lab"], ("beta-lab",)))
    code, _out, err = run(
        url(server), ["tenants", "plan", str(specs(tmp_path, "alpha-lab", "beta-lab"))], capsys
    )
    assert server.reply.seen[0][1] == "/api/v1/tenants/batch/plan"
    assert code == 4 and "beta-lab: bad" in err and "1 of 2 tenants not planned" in err


def test_with_every_spec_refused_the_refusal_is_the_answer(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(422, problem(422, "invalid_input", "no tenant planned: a; b"))
    code, out, err = run(
        url(server), ["tenants", "plan", str(specs(tmp_path, "alpha-lab", "beta-lab"))], capsys
    )
    assert (code, out, err) == (2, "", "error: no tenant planned: a; b\n")


def test_a_bad_file_or_a_name_twice_stops_everything_before_any_call(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs(tmp_path, "alpha-lab")
    (tmp_path / "broken.toml").write_text("[tenant\n")
    code, _out, err = run(url(server), ["tenants", "apply", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and server.reply.seen == []
    (tmp_path / "broken.toml").write_text('[tenant]\nname = "alpha-lab"\n')
    code, _out, err = run(url(server), ["tenants", "apply", str(tmp_path)], capsys)
    assert code == 2 and "named by two specs: alpha-lab" in err and server.reply.seen == []


def test_an_answer_of_another_shape_is_refused(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(body=b'{"tenants": [{"tenant": 1}], "refused": []}')
    code, out, err = run(url(server), ["tenants", "apply", str(specs(tmp_path, "a-lab"))], capsys)
    assert code == 3 and out == "" and "answer" in err


def test_bodies_too_large_for_one_request_go_in_several(monkeypatch: pytest.MonkeyPatch) -> None:
    many: list[dict[str, Any]] = [{"name": f"t{i}", "users": ["u" * 30] * 3} for i in range(50)]
    monkeypatch.setattr(remote, "BATCH_BYTES", 1000)
    parts = _parts(many)
    assert len(parts) > 1 and [s for p in parts for s in p] == many
    assert all(len(json.dumps({"specs": p})) <= 1000 for p in parts)
    monkeypatch.setattr(remote, "BATCH_BYTES", 10**9)
    monkeypatch.setattr(remote, "MAX_BATCH_SPECS", 7)
    assert [len(p) for p in _parts(many)] == [7] * 7 + [1]
