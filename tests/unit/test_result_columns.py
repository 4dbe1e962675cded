"""Results are inserted a column at a time: the columns are what each result's row holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from compute.store.rows import result_columns, result_values
from compute.testing import result
from health.result import CheckResult

_RESULTS = st.builds(
    lambda node, check, status, fatal, suite, gpus, values, frozen: replace(
        result(node, check, status, fatal=fatal, suite=suite, values=values),
        gpus=tuple(gpus),
        values=MappingProxyType(values) if frozen else values,
        at=datetime(2026, 1, 1, tzinfo=UTC),
    ),
    st.text(max_size=8),
    st.sampled_from(["ecc", "xid", "gemm_bf16"]),
    st.sampled_from(["pass", "warn", "fail"]),
    st.booleans(),
    st.sampled_from(["passive", "burnin"]),
    st.lists(st.integers(0, 15), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers() | st.floats(allow_nan=False)),
    st.booleans(),
)


@given(st.lists(_RESULTS, max_size=6))
def test_each_column_is_what_each_row_holds(results: list[CheckResult]) -> None:
    rows = [result_values(r) for r in results]
    columns = result_columns(results)
    assert list(columns) == (list(rows[0]) if rows else list(columns))
    for key, values in columns.items():
        assert values == [row[key] for row in rows]
