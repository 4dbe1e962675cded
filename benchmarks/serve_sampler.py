"""`computectl serve ARGS...` in this process under a sampling profiler (py-spy is not
installed): every thread's stack every 5 ms through ``sys._current_frames``; when serve
stops, where each group of threads spent its time (own frames, and cumulative frames by
file:function for the request threads and the event loop's).

    python benchmarks/serve_sampler.py serve --port N

Used by ``benchmarks/api_load_bench.py --profile``. (Its earlier experiment, SQLite writers
queued on one in-process lock, is now the store's own: compute/store/engine.py.)
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample(stop: threading.Event, own: Counter[str], cumulative: Counter[tuple[str, str]],
           samples: Counter[str]) -> None:  # fmt: skip
    me = threading.get_ident()
    while not stop.wait(0.005):
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            name = names.get(ident, "?")
            group = "request" if "AnyIO" in name else name
            samples[group] += 1
            f: Any = frame
            seen = set()
            top = True
            while f is not None:
                code = f.f_code
                where = f"{Path(code.co_filename).name}:{code.co_name}"
                if top:
                    own[f"{group} | {where}:{f.f_lineno}"] += 1
                    top = False
                if where not in seen:
                    seen.add(where)
                    cumulative[(group, where)] += 1
                f = f.f_back


def main() -> None:
    from compute.cli.main import cli

    own: Counter[str] = Counter()
    cumulative: Counter[tuple[str, str]] = Counter()
    samples: Counter[str] = Counter()
    stop = threading.Event()
    args = (stop, own, cumulative, samples)
    threading.Thread(target=sample, args=args, name="sampler", daemon=True).start()
    try:
        cli.main(args=sys.argv[1:], standalone_mode=False)
    finally:
        stop.set()
        print("samples by thread group:", dict(samples))
        print("top own frames (thread group | file:function:line):")
        for k, n in own.most_common(40):
            print(f"  {n:7d}  {k}")
        for group in ("request", "MainThread"):
            total = samples.get(group, 1)
            print(f"{group} thread(s), cumulative (share of the group's samples):")
            for (g, w), n in cumulative.most_common(800):
                if g == group and n / total > 0.02:
                    print(f"  {n / total:6.1%}  {w}")


if __name__ == "__main__":
    main()
