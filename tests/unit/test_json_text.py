"""JSON columns are written by pydantic-core's encoder where it can, json.dumps elsewhere:
what is read back is what json.dumps would have stored, for any JSON value."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from compute.store.engine import json_text

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["bad\udcff", "a\x00b", "é", "\u2028"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(_VALUES)
def test_any_value_reads_back_as_json_dumps_stored_it(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_nan_and_infinities_are_kept_as_json_dumps_keeps_them() -> None:
    back = json.loads(json_text({"a": math.nan, "b": math.inf, "c": -math.inf}))
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf


def test_a_lone_surrogate_is_escaped_as_before() -> None:
    assert json_text({"r": "bad\udcff"}) == json.dumps({"r": "bad\udcff"})
