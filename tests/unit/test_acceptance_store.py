"""Tranches kept: a name once, and a change written only over the version it read, so two
control planes (or a sweep and an operator's `acceptance run`) never both move a tranche."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from compute.store import Store
from compute.store import acceptance as kept
from compute.store.acceptance import Tranche

AT = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_change_over_a_stale_read_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        t = Tranche("hall-b", ("gpu-001", "gpu-002"), 0.95, "created", "", AT, "op")
        assert kept.create(store, t)
        assert not kept.create(store, t)  # the name is taken
        read = kept.get(store, "hall-b")
        assert read is not None and read.nodes == t.nodes and read.version == 1
        first = replace(read, state="running", phase="burn_in", progress={"nodes": {"a": 1}})
        assert kept.save(store, read, first)
        # A second writer that read the same version loses: nothing of it is written.
        assert not kept.save(store, read, replace(read, state="judged"))
        now = kept.get(store, "hall-b")
        assert now is not None
        assert (now.state, now.phase, now.progress, now.version) == (
            "running", "burn_in", {"nodes": {"a": 1}}, 2,
        )  # fmt: skip
        assert [x.name for x in kept.listed(store, ("running",))] == ["hall-b"]
        assert kept.listed(store, ("live",)) == []
    finally:
        store.close()
