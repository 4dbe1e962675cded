"""The many-tenants diff: `differs` answers as the projection it replaced (for any JSON an
API server could hand back, and for the tenants' real objects with drift added), and a
shared object compared once answers for every tenant."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes.objects import TENANT_LABEL
from scheduler.tenants import GpuQuota, TenantSpec
from tests.unit.test_kubernetes_tenant_diff import stored

POOLS = {"training": "training", "inference": "inference"}
KINDS = [*td.OWNED_WHOLE, "Namespace", "ServiceAccount"]
LABELS = ["computectl.io/tenant", "computectl.io/managed-by", "pool.computectl.io/x", "app"]

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "a", "b"])
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "spec", "rules"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": draw(st.sampled_from(KINDS))}
    if draw(st.booleans()):
        labels = draw(st.dictionaries(st.sampled_from(LABELS), st.sampled_from(["x", "y"])))
        name = draw(st.sampled_from(["n", "m"]))
        obj["metadata"] = {"name": name, "labels": labels} | draw(
            st.dictionaries(st.sampled_from(["namespace", "uid"]), scalars, max_size=2)
        )
    obj |= draw(st.dictionaries(st.sampled_from(["spec", "rules", "subjects", "a"]), json_values))
    return obj


def slow(live: dict[str, Any], want: dict[str, Any]) -> bool:
    return td.view(live, want) != td.normal(want)


@settings(max_examples=400, deadline=None)
@given(objects(), objects())
def test_differs_answers_as_the_projection_did(live: dict[str, Any], want: dict[str, Any]) -> None:
    want["kind"] = live["kind"]
    assert td.differs(live, want) == slow(live, want)
    # A live object that holds exactly what is wanted (plus the server's bookkeeping).
    same = copy.deepcopy(want)
    same.setdefault("metadata", {})["resourceVersion"] = "1"
    assert td.differs(same, want) == slow(same, want)


def spec(name: str, gpus: int = 8) -> TenantSpec:
    return TenantSpec(name, ("alice",), (GpuQuota("training", "H100-SXM", gpus),))


def test_the_real_objects_with_drift_compare_as_before() -> None:
    for queues in (False, True):
        for obj in to.desired(spec("acme"), POOLS, "nvidia.com/gpu", queues):
            live = stored(obj)
            assert not td.differs(live, obj) and not slow(live, obj)
            drifted = copy.deepcopy(live)
            drifted["metadata"]["labels"]["pool.computectl.io/other"] = "allowed"
            assert td.differs(drifted, obj) and slow(drifted, obj)
            for part in td.OWNED_WHOLE.get(obj["kind"], ()):
                extra = copy.deepcopy(live)
                extra[part] = {"x": 1} if isinstance(extra[part], dict) else [*extra[part], 1]
                assert td.differs(extra, obj) == slow(extra, obj) is True


def test_a_shared_object_is_compared_once_for_every_tenant() -> None:
    memo: td.Memo = {}
    first = to.desired(spec("acme"), POOLS, "nvidia.com/gpu", True)
    second = to.desired(spec("beta"), POOLS, "nvidia.com/gpu", True)
    live = {td.key(o): stored(o) for o in first if td.shared(o)}
    assert td.apply_steps(live, first, memo) == td.apply_steps(live, first)
    assert memo and all(not ns for _kind, ns, _name in memo)
    assert all(TENANT_LABEL not in obj["metadata"]["labels"] for obj, _step in memo.values())
    # The second tenant's shared objects are the memo's answer; its own are its own.
    steps = td.apply_steps(live, second, memo)
    assert steps == td.apply_steps(live, second)
    assert {(s.kind, s.namespace, s.name) for s in steps if td.shared(s.obj or {})} == set()
    # A shared object wanted differently (another GPU resource) is compared again.
    other = to.desired(spec("gamma"), POOLS, "example.com/gpu", True)
    assert td.apply_steps(live, other, memo) == td.apply_steps(live, other)
