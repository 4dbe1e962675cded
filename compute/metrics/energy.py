"""/metrics: energy and GPU-hours per tenant."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from compute.config import Settings
from compute.store import Store


def metrics(store: Store, settings: Settings) -> Iterator[Metric]:
    yield from ()
