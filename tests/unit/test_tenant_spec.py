"""The tenant spec's `internal` flag: a strict boolean, carried through every form a spec
takes (the parsed spec, its stored JSON, one backend's part of it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.errors import InvalidInput
from compute.tenants.spec import load_tenant, parse_tenant, spec_from_json, spec_to_json
from compute.testing import make_settings

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POOLS = make_settings(Path("/nonexistent")).effective_pools
QUOTA = {"pool": "training", "gpus": 8}

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


def test_a_tenant_is_a_customer_unless_flagged() -> None:
    assert parse_tenant({"name": "borealis-ai"}, POOLS).internal is False


@pytest.mark.parametrize("flag", [True, False])
def test_the_flag_survives_storage_and_the_split_by_pool(flag: bool) -> None:
    spec = parse_tenant({"name": "operator-ml", "internal": flag, "quotas": [QUOTA]}, POOLS)
    assert spec.internal is flag
    assert spec_from_json(spec_to_json(spec)) == spec
    assert spec.for_pools({"training"}).internal is flag
    assert spec.for_pools(set()).internal is flag


def test_records_stored_before_the_flag_are_customers() -> None:
    stored = spec_to_json(parse_tenant({"name": "borealis-ai"}, POOLS))
    del stored["internal"]
    assert spec_from_json(stored).internal is False


def test_the_flag_reads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[tenant]\nname = "operator-ml"\ninternal = true\n')
    assert load_tenant(path, POOLS).internal is True
    path.write_text('[tenant]\nname = "operator-ml"\ninternal = "yes"\n')
    with pytest.raises(InvalidInput, match="internal"):
        load_tenant(path, POOLS)


@FAST
@given(json_like)
def test_only_a_boolean_is_a_flag(value: Any) -> None:
    try:
        spec = parse_tenant({"name": "operator-ml", "internal": value}, POOLS)
    except InvalidInput as exc:
        assert type(value) is not bool
        assert "\n" not in str(exc) and "internal" in str(exc)  # noqa: PT017
        return
    assert type(value) is bool and spec.internal is value


def test_a_directory_names_its_toml_specs_once_each_in_order(tmp_path: Path) -> None:
    from compute.cli.tenants import spec_files

    (tmp_path / "b.toml").write_text("")
    (tmp_path / "a.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "sub.toml").mkdir()
    one = tmp_path / "b.toml"
    assert spec_files((one, tmp_path)) == [one, tmp_path / "a.toml"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match=r"no tenant spec \(\*\.toml\)"):
        spec_files((empty,))
