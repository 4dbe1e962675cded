"""`serve --threads/--switch-ms`: the event loop's worker threads are limited as it starts,
and API workers are started with the switch interval serve was given."""

from __future__ import annotations

import io
import socket

import anyio
import pytest
from anyio import to_thread

from compute import serve_workers
from compute.cli.server import Tuning, _limit_threads
from compute.config import Settings


def test_the_app_runs_with_the_threads_it_was_given() -> None:
    seen: list[float] = []

    async def app(scope: object, receive: object, send: object) -> None:
        seen.append(to_thread.current_default_thread_limiter().total_tokens)

    limited = _limit_threads(app, 3)

    async def main() -> None:
        for _ in range(2):
            await limited({"type": "lifespan"}, None, None)  # type: ignore[arg-type]

    anyio.run(main)
    assert seen == [3, 3]
    assert Tuning().threads == 8


class _Started:
    """What Workers hands a process it starts: its argv and the settings on its stdin."""

    def __init__(self, argv: list[str], **_: object) -> None:
        self.argv = argv
        self.stdin = io.BytesIO()
        self.stdin.close = lambda: None  # type: ignore[method-assign]


@pytest.mark.parametrize(("switch_ms", "tail"), [(None, []), (1.0, ["1.0"])])
def test_api_workers_get_the_switch_interval_serve_was_given(
    monkeypatch: pytest.MonkeyPatch, switch_ms: float | None, tail: list[str]
) -> None:
    started: list[_Started] = []

    def popen(argv: list[str], **kw: object) -> _Started:
        started.append(_Started(argv, **kw))
        return started[-1]

    monkeypatch.setattr(serve_workers.subprocess, "Popen", popen)
    with socket.socket() as sock:
        workers = serve_workers.Workers(2, sock, Settings(), threads=2, switch_ms=switch_ms)
        workers.start()
        fd = str(sock.fileno())
    assert len(started) == 2
    for s in started:
        assert s.argv[3:5] == [fd, "2"] and s.argv[6:] == tail
        assert Settings.model_validate_json(s.stdin.getvalue()) == Settings()
