"""[energy] settings: a PUE is a number from 1 to 3, per site or by default; anything else
is refused with the setting named."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from compute.config_energy import EnergySettings

VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


def _good(v: Any) -> bool:
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and 1.0 <= v <= 3.0
    )


@given(VALUES)
def test_a_default_pue_is_a_number_from_1_to_3(v: Any) -> None:
    if _good(v):
        assert EnergySettings(pue=v).pue_of("any") == v
    else:
        with pytest.raises(ValidationError, match="pue"):
            EnergySettings(pue=v)


@given(st.text(min_size=1, max_size=20).filter(str.isprintable), VALUES)
def test_a_sites_pue_is_a_number_from_1_to_3(site: str, v: Any) -> None:
    if _good(v):
        s = EnergySettings(site_pue={site: v})
        assert s.pue_of(site) == v and s.pue_of(site + "x") == s.pue
    else:
        with pytest.raises(ValidationError, match="site_pue"):
            EnergySettings(site_pue={site: v})


def test_gap_and_retention_bounds() -> None:
    for bad in ({"max_gap_seconds": 1}, {"retention_days": 0}, {"retention_days": 1.5}):
        with pytest.raises(ValidationError):
            EnergySettings(**bad)
    assert EnergySettings(max_gap_seconds=60, retention_days=31).retention_days == 31
