"""Capacity planning's pure parts: --add parsing (outside input) and the allocation trend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.errors import InvalidInput
from compute.services.capacity_plan import Addition, allocation_trend, parse_addition
from compute.testing import EPOCH


def test_an_addition_parses() -> None:
    assert parse_addition("4:H100-SXM:hall-a") == Addition(4, "H100-SXM", "hall-a")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4",
        "4:H100",
        "0:H100-SXM:a",
        "-1:H100-SXM:a",
        "4:H100 SXM:a",
        "4:H100-SXM:a:b",
        "1000000:H100-SXM:a",
        "4:H100-SXM:a\n",
        "4:-x:a",
        "٤:H100-SXM:a",
    ],
)
def test_bad_additions_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_addition(text)
    assert "\n" not in str(exc.value).replace(repr(text), "")


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused(text: str) -> None:
    try:
        a = parse_addition(text)
    except InvalidInput:
        return
    assert 1 <= a.nodes <= 100_000 and f"{a.nodes}:{a.gpu_model}:{a.room}" == text.lstrip("0")


def test_the_trend_is_allocated_gpus_a_day_per_pool_and_model() -> None:
    samples = []
    for day in range(5):
        at = EPOCH + timedelta(days=day)
        samples += [
            (at, "training", "H100-SXM", "allocated", 100 + 10 * day),
            (at, "training", "H100-SXM", "idle", 156 - 10 * day),
            (at, "inference", "H100-SXM", "idle", 64),
        ]
    trend = allocation_trend(samples)
    assert trend[("training", "H100-SXM")] == pytest.approx((10.0, 5), rel=1e-9)
    assert trend[("inference", "H100-SXM")] == (0.0, 5)  # none allocated: flat, not absent
