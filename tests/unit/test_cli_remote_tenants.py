"""`tenants plan|apply DIR` through --server: one call of the one-spec API per spec, each
file checked first, a refusal holding back no other (exit 4), none done: the refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def plan(name: str) -> dict[str, Any]:
    return {"tenant": name, "changes": []}


def test_each_spec_is_one_call_and_all_are_counted(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(body=json.dumps(plan("alpha-lab")).encode())
    code, out, err = run(
        url(server), ["tenants", "apply", str(specs(tmp_path, "alpha-lab", "beta-lab"))], capsys
    )
    assert (code, err) == (0, "")
    assert [(m, p) for m, p, _h, _b in server.reply.seen] == [
        ("PUT", "/api/v1/tenants/alpha-lab"),
        ("PUT", "/api/v1/tenants/beta-lab"),
    ]
    assert "2 tenant(s) applied: 0 with changes, 2 unchanged" in out


def test_with_every_spec_refused_the_refusals_are_the_answer(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = Reply(409, problem(409, "refused", "tenant x: no"))
    code, out, err = run(
        url(server), ["tenants", "plan", str(specs(tmp_path, "alpha-lab", "beta-lab"))], capsys
    )
    assert code == 2 and out == ""
    assert err == "error: no tenant planned: tenant x: no; tenant x: no\n"


def test_a_bad_file_stops_everything_before_any_call(
    server: Hostile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs(tmp_path, "alpha-lab")
    (tmp_path / "broken.toml").write_text("[tenant\n")
    code, _out, err = run(url(server), ["tenants", "apply", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and server.reply.seen == []
