"""The body of a node's power post, validated strictly: whatever JSON arrives, it is refused
with a validation error or taken with bounded, finite, consistent values."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from compute.services.power_report import MAX_GPUS, PowerReport

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=12), c, max_size=6),
    max_leaves=40,
)
NUM = st.one_of(st.floats(-100, 6000), st.integers(-5, 6000), st.just(math.nan), st.none())
GPU = st.fixed_dictionaries(
    {"index": st.integers(-2, 40), "power_watts": NUM},
    optional={
        k: NUM
        for k in (
            "limit_watts",
            "default_limit_watts",
            "min_limit_watts",
            "max_limit_watts",
            "enforced_limit_watts",
        )
    },
)


def _sane(r: PowerReport) -> None:
    assert len(r.gpus) <= MAX_GPUS and len({g.index for g in r.gpus}) == len(r.gpus)
    for g in r.gpus:
        assert 0 <= g.index < MAX_GPUS and math.isfinite(g.power_watts) and g.power_watts >= 0
        lo, hi = g.min_limit_watts, g.max_limit_watts
        assert lo is None or hi is None or lo <= hi
        if hi is not None and g.limit_watts is not None:
            assert g.limit_watts <= hi + 1
    assert r.node_watts is None or 0 <= r.node_watts <= 100_000


@given(JSON)
def test_any_json_is_refused_or_sane(raw: Any) -> None:
    with contextlib.suppress(ValidationError):
        _sane(PowerReport.model_validate_json(json.dumps(raw)))


@given(st.fixed_dictionaries({"gpus": st.lists(GPU, max_size=34)},
                             optional={"node_watts": NUM}))  # fmt: skip
def test_reports_are_refused_or_sane(body: dict[str, Any]) -> None:
    with contextlib.suppress(ValidationError):
        _sane(PowerReport.model_validate_json(json.dumps(body)))


@pytest.mark.parametrize(
    "gpu",
    [
        {"index": 0, "power_watts": -1},
        {"index": 0, "power_watts": "500"},
        {"index": 0, "power_watts": 100, "min_limit_watts": 700, "max_limit_watts": 200},
        {"index": 0, "power_watts": 100, "limit_watts": 900, "max_limit_watts": 700},
        {"index": 32, "power_watts": 100},
        {"index": 0, "power_watts": 100, "uuid": "GPU-\x1b[31m"},
        {"index": 0, "power_watts": 100, "shell": "rm -rf /"},
    ],
)
def test_refused(gpu: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PowerReport.model_validate({"gpus": [gpu]})


def test_nan_and_twice_the_same_gpu_are_refused() -> None:
    with pytest.raises(ValidationError):
        PowerReport.model_validate_json('{"gpus": [{"index": 0, "power_watts": NaN}]}')
    twice = {"gpus": [{"index": 1, "power_watts": 1.0}, {"index": 1, "power_watts": 2.0}]}
    with pytest.raises(ValidationError):
        PowerReport.model_validate(twice)
