"""The sweep thread of `serve --workers N` runs nicer than the rest of its process."""

from __future__ import annotations

import os
import threading

from compute.loop import _nicer


def test_only_the_calling_thread_gets_nicer() -> None:
    me = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, me)
    seen: list[int] = []

    def sweep_thread() -> None:
        _nicer(3)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=sweep_thread)
    t.start()
    t.join()
    assert seen == [min(before + 3, 19)]
    assert os.getpriority(os.PRIO_PROCESS, me) == before
