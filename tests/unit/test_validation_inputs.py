"""The validation primitives and the file loaders: whatever the input, either a value that
can be stored and shown, or one InputError/ComputeError line, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.config import load_settings
from compute.errors import ConfigError, InvalidInput
from compute.tenants.spec import load_tenant, parse_tenant
from compute.validation import read_toml, reason
from health import inputs
from health.inputs import InputError
from health.result import CheckResult, ResultError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
GOOD = {"node": "n1", "check": "xid", "version": "1", "status": "pass", "at": NOW.isoformat()}


def _storable(s: str) -> None:
    s.encode("utf-8")  # no lone surrogates
    assert "\x00" not in s


@FAST
@given(st.text())
def test_text_is_printable_or_refused_in_one_line(value: str) -> None:
    try:
        out = inputs.text(value, "x", max_len=200)
    except InputError as exc:
        assert "\n" not in str(exc)  # noqa: PT017
        return
    _storable(out)
    assert all(not (c < " " or "\x7f" <= c <= "\x9f") for c in out)


@pytest.mark.parametrize(
    "value",
    ["bad\udcff", "a\x00b", "line\nbreak", "\x1b[31mred", "x" * 161, "   ", "tab\there"],
)
def test_bad_reasons_are_refused(value: str) -> None:
    with pytest.raises(InputError):
        reason(value)


@pytest.mark.parametrize(
    "value",
    [
        "fan noise",
        "Lüfter defekt ⚠️",
        "\u200f\u05e2\u05d1\u05e8\u05d9\u05ea",
        "<script>x</script>",
        "%s \\ '\"",
    ],
)
def test_ordinary_text_is_taken(value: str) -> None:
    assert reason(value) == value


@pytest.mark.parametrize("name", ["gpu-001\n", "gpu-001 ", "-gpu", "a/b", "", "x" * 254])
def test_node_names_are_anchored_at_both_ends(name: str) -> None:
    with pytest.raises(InputError):
        inputs.node_name(name)


@pytest.mark.parametrize(
    ("value", "ok"),
    [(1, True), (True, False), ("8", False), (2**63, False), (-(2**63), True), (1.0, False)],
)
def test_integers_are_strict(value: object, ok: bool) -> None:
    if ok:
        assert inputs.integer(value, "n") == value
    else:
        with pytest.raises(InputError):
            inputs.integer(value, "n")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e301, True, "1"])
def test_numbers_are_finite_and_bounded(value: object) -> None:
    with pytest.raises(InputError):
        inputs.number(value, "x")


@pytest.mark.parametrize(
    "raw", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "2026-01-05", "x" * 100]
)
def test_timestamps_out_of_range_are_refused(raw: str) -> None:
    with pytest.raises(InputError):
        inputs.timestamp(raw, "at")


def test_results_must_be_recent() -> None:
    future = {**GOOD, "at": (NOW + timedelta(hours=1)).isoformat()}
    old = {**GOOD, "at": "1969-12-31T23:59:59+00:00"}
    skewed = {**GOOD, "at": (NOW + timedelta(minutes=2)).isoformat()}
    for bad in (future, old):
        with pytest.raises(ResultError):
            CheckResult.from_dict(bad, now=NOW, max_age=timedelta(days=14))
    assert CheckResult.from_dict(skewed, now=NOW, max_age=timedelta(days=14)).at > NOW


def test_printable_neutralises_escapes_and_keeps_text() -> None:
    assert inputs.printable("a\x1b[2Jb\udcff\u202e") == "a\\x1b[2Jb\\udcff\\u202e"
    assert inputs.printable("Lüfter ⚠️ \u200f") == "Lüfter ⚠️ \u200f"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
result_like = st.fixed_dictionaries(
    {},
    optional={
        k: json_values | st.just(v)
        for k, v in {**GOOD, "values": {"x": 1}, "gpus": [0], "evidence": "e"}.items()
    },
)


@FAST
@given(result_like)
def test_any_result_parses_into_a_storable_value_or_one_error(data: dict[str, Any]) -> None:
    try:
        r = CheckResult.from_dict(data, node="n1", now=NOW, max_age=timedelta(days=14))
    except ResultError as exc:
        assert "\n" not in str(exc)  # noqa: PT017
        str(exc).encode("utf-8")
        return
    json.dumps(r.to_dict(), allow_nan=False).encode("utf-8")
    for text in (r.check, r.version, r.evidence, *r.values):
        _storable(text)


spec_like = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values | st.just("borealis-ai") | st.just("borealis-ai\n"),
        "users": json_values | st.lists(st.text(max_size=12), max_size=3),
        "quotas": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"pool": st.just("training") | json_values, "gpus": json_values | st.integers()}
            ),
            max_size=2,
        ),
        "gpu_hours_budget": json_values,
        "max_wall_time_hours": json_values,
    },
)


@FAST
@given(spec_like)
def test_any_tenant_spec_parses_or_is_one_line(spec: dict[str, Any]) -> None:
    from compute.testing import make_settings

    pools = make_settings(Path("/nonexistent")).effective_pools
    try:
        parsed = parse_tenant(spec, pools)
    except InvalidInput as exc:
        assert "\n" not in str(exc)  # noqa: PT017
        return
    assert parsed.name == spec["name"] and "\n" not in parsed.name
    for q in parsed.quotas:
        assert type(q.gpus) is int


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "borealis\n"}, "tenant name"),
        ({"name": "bor", "users": ["alice\n"]}, "not valid login names"),
        ({"name": "bor", "quotas": [{"pool": "training", "gpus": True}]}, "integer"),
        ({"name": "bor", "quotas": [{"pool": "training", "gpus": "8"}]}, "integer"),
        ({"name": "bor", "gpu_hours_budget": float("inf")}, "finite"),
    ],
)
def test_spec_refusals_named_in_issue_9(spec: dict[str, Any], message: str) -> None:
    from compute.testing import make_settings

    with pytest.raises(InvalidInput, match=message):
        parse_tenant(spec, make_settings(Path("/nonexistent")).effective_pools)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_file_loads_or_is_one_line(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("f") / "file.toml"
    path.write_bytes(raw)
    try:
        read_toml(path, "file")
    except InputError as exc:
        assert "\n" not in str(exc).strip()  # noqa: PT017
    for load in (lambda: load_settings(path, env={}), lambda: load_tenant(path, [])):
        try:
            load()
        except (ConfigError, InvalidInput) as exc:
            assert str(exc)  # noqa: PT017


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[remediation]\ndown_checks = ['nope']\n", "unknown check"),
        ("[simulation]\nracks = true\n", "must be a number"),
        ("[simulation]\nracks = '4'\n", "must be a number"),
        ("[sweep]\ninterval_seconds = inf\n", "sweep.interval_seconds"),
        ('[simulation]\nsite = "a\\u0000b"\n', "control character"),
    ],
)
def test_settings_refusals(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


def test_unreadable_and_odd_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bin.toml").write_bytes(b"\x7fELF\x00\xff\xfe")
    for path, message in [
        (tmp_path / "bin.toml", "not UTF-8"),
        (tmp_path, "is a directory"),
        (tmp_path / "missing.toml", "does not exist"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_settings(path, env={})
        with pytest.raises(InvalidInput, match=message):
            load_tenant(path, [])
    huge = tmp_path / "huge.toml"
    huge.write_text("a = 1\n" * 200_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_settings(huge, env={})
