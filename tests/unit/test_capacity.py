from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compute.domain import Allocation, Node
from compute.services.capacity import capacity
from compute.testing import EPOCH
from health.policy import Lifecycle

node = st.builds(
    lambda i, pool, state, gpus, alloc: Node(
        name=f"n{i}",
        pool=pool,
        rack="r1",
        gpu_model="H100-SXM" if pool != "b" else "H200",
        gpu_count=gpus,
        state=state,
        state_since=EPOCH,
        gpus_allocated=alloc,
    ),
    st.integers(0, 10_000),
    st.sampled_from(["a", "b"]),
    st.sampled_from(list(Lifecycle)),
    st.integers(0, 16),
    st.integers(-2, 20),
)


@given(st.lists(node, max_size=40, unique_by=lambda n: n.name))
def test_totals_equal_installed_in_every_state_mix(nodes: list[Node]) -> None:
    cap = capacity(nodes, [])
    assert cap.total == cap.installed == sum(n.gpu_count for n in nodes)
    assert all(r.gpus > 0 for r in cap.rows)


def test_in_service_splits_into_allocated_and_idle_and_tenants_group() -> None:
    nodes = [
        Node("n1", "a", "r", "H100-SXM", 8, Lifecycle.IN_SERVICE, EPOCH, gpus_allocated=5),
        Node("n2", "a", "r", "H100-SXM", 8, Lifecycle.DRAINED, EPOCH),
    ]
    cap = capacity(
        nodes, [Allocation("t1", "a", "n1", 3, "1"), Allocation("t1", "a", "n1", 2, "2")]
    )
    assert {(r.state, r.gpus) for r in cap.rows} == {("allocated", 5), ("idle", 3), ("drained", 8)}
    assert [(t.tenant, t.gpus) for t in cap.tenants] == [("t1", 5)]
