"""The node's own credential: where the node check finds it, what it refuses, and that it
never shows the token (health.node_token, health.node_check.run, health.reporting)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health import node_check as nc
from health.__main__ import main as health_main
from health.node_token import TOKEN_ENV, TokenFileError, node_token, read_token_file
from health.telemetry import NodeExpectation, NodeSnapshot, TelemetrySourceError
from health.thresholds import Thresholds

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "cct_abcd1234_" + "s" * 43


class _NoSource:
    """A node whose GPUs cannot be read: the check's result is known without a GPU."""

    def snapshot(self, node: str, since: datetime | None) -> NodeSnapshot:
        raise TelemetrySourceError("no GPUs here")


def token_file(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


def test_the_first_there_wins_file_then_environment_then_the_defaults(tmp_path: Path) -> None:
    projected = token_file(tmp_path / "projected", "eyJ.projected.sig\n")
    node_file = token_file(tmp_path / "node-token", SECRET)
    given_file = token_file(tmp_path / "given", "from-the-option")
    defaults = (projected, node_file)
    env = {TOKEN_ENV: " from-the-env\n"}
    assert node_token(given_file, env, defaults) == "from-the-option"
    assert node_token(None, env, defaults) == "from-the-env"
    assert node_token(None, {}, defaults) == "eyJ.projected.sig"
    assert node_token(None, {}, (tmp_path / "absent", node_file)) == SECRET
    assert node_token(None, {}, (tmp_path / "absent",)) is None


def test_an_explicit_file_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"cannot read token file .*/absent"):
        node_token(tmp_path / "absent", {}, ())


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        (SECRET, 0o644, "open to every user of this node \\(mode 0644\\)"),
        (SECRET, 0o602, "open to every user"),
        ("", 0o600, "is empty"),
        ("\n  \n", 0o600, "is empty"),
        ("two words", 0o600, "does not hold a token"),
        ("caf\u00e9", 0o600, "does not hold a token"),
        (b"\xff\xfe", 0o600, "does not hold a token"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_line_naming_it(
    tmp_path: Path, content: str | bytes, mode: int, why: str
) -> None:
    path = token_file(tmp_path / "t", content, mode)
    with pytest.raises(TokenFileError, match=why) as raised:
        read_token_file(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_directory_or_a_huge_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_token_file(tmp_path / "d")
    with pytest.raises(TokenFileError, match="larger than a token"):
        read_token_file(token_file(tmp_path / "big", "x" * 20000))


@FAST
@given(st.binary(max_size=200))
def test_whatever_a_token_file_holds_the_answer_is_a_token_or_one_line(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = token_file(Path(d) / "t", data)
        try:
            token = read_token_file(path)
        except TokenFileError as exc:
            message = str(exc)
            token = ""
        else:
            message = ""
        assert "\n" not in message
        assert bool(token) != bool(message)
        assert token == token.strip() and token.isascii() and " " not in token


@FAST
@given(st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ0123456789", min_size=12, max_size=60))
def test_the_token_is_never_in_a_message(secret: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for content, mode in ((secret, 0o644), (f"{secret} {secret}", 0o600)):
            path = token_file(Path(d) / "t", content, mode)
            with pytest.raises(TokenFileError) as raised:
                read_token_file(path)
            assert secret not in str(raised.value)


# -- the node check with a control plane ---------------------------------------------------


class _Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []


@pytest.fixture
def control_plane() -> Iterator[tuple[str, _Seen]]:
    """A local HTTP endpoint that records each request's method, path and Authorization."""
    seen = _Seen()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: dict[str, object]) -> None:
            seen.requests.append((self.command, self.path, self.headers.get("authorization")))
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer({"gpu_count": 8, "gpu_model": "H100", "gpus": []})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self._answer({"ingested": 1})

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_report_and_the_inventory_read_carry_the_nodes_token(
    tmp_path: Path, control_plane: tuple[str, _Seen]
) -> None:
    url, seen = control_plane
    req = nc.CheckRequest(
        node="gpu-007",
        state_file=tmp_path / "s.json",
        report_url=url,
        token_file=token_file(tmp_path / "t", SECRET + "\n"),
    )
    lines: list[str] = []
    code = nc.run(req, _NoSource(), Thresholds(), out=lines.append, err=lines.append)
    assert code == nc.EXIT_FATAL  # the source reads nothing: fatal, but reported
    assert seen.requests == [
        ("GET", "/api/v1/nodes/gpu-007", f"Bearer {SECRET}"),
        ("POST", "/api/v1/nodes/gpu-007/health", f"Bearer {SECRET}"),
    ]
    assert not any(SECRET in line for line in lines)


def test_no_credential_anywhere_reports_without_one(
    tmp_path: Path, control_plane: tuple[str, _Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = control_plane
    monkeypatch.setattr(nc, "node_token", lambda token_file: None)  # nothing on this host
    req = nc.CheckRequest(node="n1", state_file=tmp_path / "s.json", report_url=url)
    nc.run(req, _NoSource(), Thresholds(), out=lambda _: None, err=lambda _: None)
    assert [auth for _, _, auth in seen.requests] == [None, None]


def test_an_unusable_token_file_is_a_usage_error_before_anything_is_checked(
    tmp_path: Path, control_plane: tuple[str, _Seen]
) -> None:
    url, seen = control_plane
    req = nc.CheckRequest(
        node="n1",
        state_file=tmp_path / "s.json",
        report_url=url,
        token_file=token_file(tmp_path / "t", SECRET, 0o644),
    )
    lines: list[str] = []
    code = nc.run(req, _NoSource(), Thresholds(), out=lines.append, err=lines.append)
    assert code == nc.EXIT_USAGE and len(lines) == 1 and "chmod 600" in lines[0]
    assert SECRET not in lines[0]
    assert not seen.requests and not (tmp_path / "s.json").exists()


def test_without_report_the_token_is_not_read(tmp_path: Path) -> None:
    """A check that only prints needs no credential: a broken token file does not stop it."""
    req = nc.CheckRequest(node="n1", state_file=tmp_path / "s.json", token_file=tmp_path / "absent")
    expectation = NodeExpectation(gpu_count=8, gpu_model="")
    code = nc.run(req, _NoSource(), Thresholds(), expectation=expectation, out=lambda _: None)
    assert code == nc.EXIT_FATAL


def test_python_m_health_takes_the_token_from_a_file_and_has_no_token_option(
    tmp_path: Path,
    control_plane: tuple[str, _Seen],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, seen = control_plane
    monkeypatch.setenv("COMPUTECTL_DATA_DIR", str(tmp_path / "data"))
    path = token_file(tmp_path / "t", SECRET)
    health_main(["check", "--node", "n1", "--report", url, "--token-file", str(path)])
    assert [auth for _, _, auth in seen.requests] == [f"Bearer {SECRET}"] * 2
    assert SECRET not in "".join(capsys.readouterr())
    with pytest.raises(SystemExit) as ended:
        health_main(["check", "--token", SECRET])
    assert ended.value.code == 2


def test_a_token_renewed_during_the_check_is_the_one_reported_with(
    tmp_path: Path, control_plane: tuple[str, _Seen]
) -> None:
    """A burn-in runs long: the kubelet may rotate the projected token meanwhile."""
    url, seen = control_plane
    path = token_file(tmp_path / "t", "old-token")

    class Renews(_NoSource):
        def snapshot(self, node: str, since: datetime | None) -> NodeSnapshot:
            token_file(path, "new-token")
            return super().snapshot(node, since)

    req = nc.CheckRequest(
        node="n1", state_file=tmp_path / "s.json", report_url=url, token_file=path
    )
    nc.run(req, Renews(), Thresholds(), out=lambda _: None, err=lambda _: None)
    assert [auth for _, _, auth in seen.requests] == ["Bearer old-token", "Bearer new-token"]
