"""`serve --threads`: the event loop's worker threads are limited as it starts."""

from __future__ import annotations

import anyio
from anyio import to_thread

from compute.cli.server import Tuning, _limit_threads


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
