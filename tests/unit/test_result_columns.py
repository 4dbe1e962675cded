"""Results and GPUs are inserted a column at a time: the columns are what each row holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from compute.domain import Gpu
from compute.store.rows import (
    GPU_COLUMNS,
    RESULT_COLUMNS,
    columns_of,
    gpu_values,
    result_values,
)
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
    columns = columns_of(RESULT_COLUMNS, results)
    assert list(columns) == (list(rows[0]) if rows else list(columns))
    for key, values in columns.items():
        assert values == [row[key] for row in rows]


_GPUS = st.builds(
    Gpu,
    node=st.text(max_size=8),
    index=st.integers(0, 15),
    uuid=st.text(max_size=12),
    model=st.sampled_from(["H100", "H200"]),
    serial=st.text(max_size=6),
)


@given(st.lists(_GPUS, max_size=6))
def test_each_gpu_column_is_what_each_row_holds(gpus: list[Gpu]) -> None:
    rows = [gpu_values(g) for g in gpus]
    columns = columns_of(GPU_COLUMNS, gpus)
    assert list(columns) == ["node", "index", "uuid", "model", "serial"]
    for key, values in columns.items():
        assert values == [row[key] for row in rows]
