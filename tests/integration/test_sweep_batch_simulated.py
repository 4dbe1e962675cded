"""The sweep acts in batches (burn-in starts, resumes): each node recorded as one alone would
be, and a node written while its batch is in the backend keeps that write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from compute.domain import EventKind, Node
from compute.runtime import Runtime
from compute.testing import make_runtime
from health.policy import Lifecycle
from scheduler.protocol import BatchResult

pytestmark = pytest.mark.integration

NO_CHECKUPS = {"remediation": {"periodic_burn_in_days": 0}}


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    runtime = make_runtime(tmp_path, config=NO_CHECKUPS)
    yield runtime
    runtime.close()


def test_a_batch_records_each_node_as_one_alone_would(rt: Runtime) -> None:
    report = rt.sweep()
    started = sorted(a["node"] for a in report.actions if a["action"] == "start_burn_in")
    assert started and not report.errors
    events = Counter(
        e.node for e in rt.store.events(kinds=[EventKind.BURN_IN_STARTED], limit=10_000)
    )
    assert events == Counter(started)
    audited = Counter(e.target for e in rt.store.audit(limit=10_000))
    assert all(audited[name] == 1 for name in started)
    for name in started:
        node = rt.store.node(name)
        assert node is not None and node.version >= 2  # adopted, burn-in started, results
        assert rt.store.latest_results(name), name  # the simulated burn-in reported

    # The next sweep resumes them, in batches too.
    again = rt.sweep()
    resumed = sorted(a["node"] for a in again.actions if a["action"] == "resume")
    assert resumed == started
    assert all(n.state is Lifecycle.IN_SERVICE for n in rt.store.nodes() if n.name in started)


def test_a_node_written_while_its_batch_is_in_the_backend_keeps_that_write(rt: Runtime) -> None:
    ((backend, _pools),) = rt.remediator.backends.groups()  # one simulated manager for all
    drain_many = backend.drain_many
    written: list[str] = []

    def meanwhile(names: Sequence[str], reason: str, mode: str) -> BatchResult:
        # Another writer (say, a posted result) writes the first node of the batch.
        if not written:
            written.append(names[0])
            rt.store.update_node(names[0], lambda n: n.evolve(power_watts=1234.5))
        return drain_many(names, reason, mode)

    backend.drain_many = meanwhile  # type: ignore[method-assign]
    report = rt.sweep()
    assert written and not report.errors
    node: Node | None = rt.store.node(written[0])
    assert node is not None
    assert node.power_watts == 1234.5  # the other write stays
    assert node.state is Lifecycle.BURN_IN  # and the burn-in is recorded on it
    started = [e.node for e in rt.store.events(kinds=[EventKind.BURN_IN_STARTED], limit=10_000)]
    assert started.count(written[0]) == 1
