"""Build the Grafana boards into dashboards/grafana/.

python -m dashboards.build           # write the JSON files
python -m dashboards.build --check   # exit 1 if a committed file differs from the code
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.fleet import fleet
from dashboards.health import health
from dashboards.panels import numbered
from dashboards.power import power
from dashboards.tenants import tenants

OUT = Path(__file__).resolve().parent / "grafana"
BOARDS: dict[str, Callable[[], Dashboard]] = {
    "computectl-fleet": fleet,
    "computectl-power": power,
    "computectl-tenants": tenants,
    "computectl-health": health,
}


def models() -> dict[str, dict[str, object]]:
    return {uid: numbered(make()) for uid, make in BOARDS.items()}


def render(model: dict[str, object]) -> str:
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def files() -> dict[Path, str]:
    """Each board's file and its text; round-tripped through JSON so tests read what
    Grafana would import."""
    return {OUT / f"{uid}.json": render(model) for uid, model in models().items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--check", action="store_true", help="compare, write nothing")
    a = p.parse_args(argv)
    stale = [
        path for path, text in files().items() if not path.exists() or path.read_text() != text
    ]
    if a.check:
        for path in stale:
            print(f"{path.name} is not what dashboards/ builds: run python -m dashboards.build")
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for path, text in files().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
