"""Power readings in the store: each node's latest (per GPU and the BMC's), and the power
series of nodes and racks, downsampled with bounded storage.

A series keeps raw samples (``step`` 0, at most one per sample interval) for the raw
retention; older ones are folded into buckets of ``bucket`` seconds (mean and peak, how
many samples); buckets older than the retention go, and a series never holds more than
``max_rows`` rows (the oldest go first). docs/power.md has the figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from compute.store.models import NodeRow
from compute.store.power_models import PowerLatestRow, PowerSampleRow
from compute.store.repository import Store, Tx
from compute.store.rows import table_of

NODE, RACK = "node", "rack"


@dataclass(frozen=True, slots=True)
class Latest:
    """A node's latest reading. ``gpus``: per GPU, index, uuid, power_watts and limit_watts,
    default_limit_watts, min_limit_watts, max_limit_watts (None where NVML had none)."""

    node: str
    rack: str
    at: datetime
    gpu_watts: float
    node_watts: float | None
    node_source: str
    node_error: str
    gpus: tuple[Mapping[str, Any], ...]

    @property
    def watts(self) -> float:
        """The node's draw: the BMC's where it has one, else its GPUs'."""
        return self.node_watts if self.node_watts is not None else self.gpu_watts


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    step: int
    watts: float
    peak_watts: float
    samples: int


@dataclass(frozen=True, slots=True)
class Retention:
    every: timedelta  # the least time between two raw samples of a series
    raw: timedelta
    bucket: int  # seconds
    keep: timedelta
    max_rows: int
    stale: timedelta


def _latest(r: PowerLatestRow) -> Latest:
    return Latest(
        r.node, r.rack, r.at, r.gpu_watts, r.node_watts, r.node_source, r.node_error,
        tuple(r.gpus or ()),
    )  # fmt: skip


def put_readings(store: Store, readings: Sequence[Latest], ret: Retention) -> None:
    """Each node's latest reading, its draw on the node's record (the sweep's rack sums read
    it), a sample where the series' last is older than the interval, and its rack's sum."""
    if not readings:
        return
    with store.transaction() as tx:
        s = tx.s
        names = [r.node for r in readings]
        known = {row.node: row for row in s.scalars(
            select(PowerLatestRow).where(PowerLatestRow.node.in_(names))
        )}  # fmt: skip
        for r in readings:
            row = known.get(r.node)
            values = {
                "rack": r.rack, "at": r.at, "gpu_watts": r.gpu_watts, "node_watts": r.node_watts,
                "node_source": r.node_source, "node_error": r.node_error[:200],
                "gpus": [dict(g) for g in r.gpus],
            }  # fmt: skip
            if row is None:
                s.add(PowerLatestRow(node=r.node, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)
            s.execute(update(NodeRow).where(NodeRow.name == r.node).values(power_watts=r.watts))
        s.flush()
        at = max(r.at for r in readings)
        # Most posts come between two samples: one look-up each for the node and its rack.
        nodes = set(_due(tx, NODE, [r.node for r in readings], at, ret.every))
        _add(tx, NODE, {r.node: r.watts for r in readings if r.node in nodes}, at)
        racks = _due(tx, RACK, [r.rack for r in readings if r.rack], at, ret.every)
        _add(tx, RACK, _rack_sums(s, racks, at - ret.stale), at)


def _rack_sums(s: Session, racks: Iterable[str], fresh: datetime) -> dict[str, float]:
    sums: dict[str, float] = {}
    for rack in sorted(racks):
        q = select(PowerLatestRow.gpu_watts, PowerLatestRow.node_watts).where(
            PowerLatestRow.rack == rack, PowerLatestRow.at >= fresh
        )
        sums[rack] = sum(g if b is None else b for g, b in s.execute(q).all())
    return sums


def _due(tx: Tx, kind: str, names: Iterable[str], at: datetime, every: timedelta) -> list[str]:
    """Of ``names``, the series whose last raw sample is older than ``every``."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    last: dict[str, datetime] = dict(
        tx.s.execute(
            select(PowerSampleRow.name, func.max(PowerSampleRow.at))
            .where(
                PowerSampleRow.kind == kind,
                PowerSampleRow.step == 0,
                PowerSampleRow.name.in_(wanted),
            )
            .group_by(PowerSampleRow.name)
        ).all()
    )
    return [n for n in wanted if last.get(n) is None or at - _aware(last[n]) >= every]


def _add(tx: Tx, kind: str, watts: Mapping[str, float], at: datetime) -> None:
    tx.s.add_all(
        PowerSampleRow(kind=kind, name=n, step=0, at=at, watts=w, peak_watts=w)
        for n, w in watts.items()
    )


def _aware(at: datetime) -> datetime:
    # func.max bypasses the column's type on SQLite: a naive UTC datetime (or its text).
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def latest(store: Store, nodes: Sequence[str] | None = None) -> list[Latest]:
    q = select(PowerLatestRow).order_by(PowerLatestRow.node)
    if nodes is not None:
        q = q.where(PowerLatestRow.node.in_(list(nodes)))
    with Session(store.engine) as s:
        return [_latest(r) for r in s.scalars(q)]


def totals(store: Store) -> list[tuple[str, str, float, float | None]]:
    """(node, rack, GPU watts, BMC watts) of every node's latest reading (/metrics)."""
    q = select(
        PowerLatestRow.node, PowerLatestRow.rack, PowerLatestRow.gpu_watts,
        PowerLatestRow.node_watts,
    )  # fmt: skip
    with Session(store.engine) as s:
        return [(n, r, g, b) for n, r, g, b in s.execute(q).all()]


def series(store: Store, kind: str, name: str, since: datetime, limit: int = 500) -> list[Sample]:
    """Newest first: raw samples and buckets since ``since``."""
    q = (
        select(PowerSampleRow)
        .where(PowerSampleRow.kind == kind, PowerSampleRow.name == name, PowerSampleRow.at >= since)
        .order_by(PowerSampleRow.at.desc())
        .limit(limit)
    )
    with Session(store.engine) as s:
        return [Sample(r.at, r.step, r.watts, r.peak_watts, r.samples) for r in s.scalars(q)]


def compact(store: Store, now: datetime, ret: Retention) -> int:
    """Fold raw samples older than the raw retention into buckets, drop buckets older than
    the retention, cap every series' rows; returns the rows removed. Plain rows, not ORM
    objects: an hour of a 10,000-node fleet's samples is folded at once."""
    cutoff = now - ret.raw
    old_raw = and_(PowerSampleRow.step == 0, PowerSampleRow.at < cutoff)
    with store.transaction() as tx:
        s = tx.s
        old = s.execute(
            select(PowerSampleRow.kind, PowerSampleRow.name, PowerSampleRow.at,
                   PowerSampleRow.watts, PowerSampleRow.peak_watts, PowerSampleRow.samples)
            .where(old_raw)
        ).all()  # fmt: skip
        # (kind, name, bucket start) -> [weighted sum, peak, samples]
        folded: dict[tuple[str, str, int], list[float]] = {}
        for kind, name, at, watts, peak, n in old:
            start = int(_aware(at).timestamp()) // ret.bucket * ret.bucket
            acc = folded.setdefault((kind, name, start), [0.0, 0.0, 0])
            acc[0] += watts * n
            acc[1] = max(acc[1], peak)
            acc[2] += n
        if folded:
            s.execute(
                insert(PowerSampleRow),
                [{"kind": k, "name": n, "step": ret.bucket, "at": datetime.fromtimestamp(t, UTC),
                  "watts": acc[0] / acc[2], "peak_watts": acc[1], "samples": int(acc[2])}
                 for (k, n, t), acc in folded.items()],
            )  # fmt: skip
            s.execute(delete(PowerSampleRow).where(old_raw))
        removed = len(old) - len(folded)
        gone = s.execute(delete(PowerSampleRow).where(PowerSampleRow.at < now - ret.keep))
        removed += int(getattr(gone, "rowcount", 0) or 0)
        removed += _cap_rows(s, ret.max_rows)
    return removed


def _cap_rows(s: Session, max_rows: int) -> int:
    over = s.execute(
        select(PowerSampleRow.kind, PowerSampleRow.name, func.count())
        .group_by(PowerSampleRow.kind, PowerSampleRow.name)
        .having(func.count() > max_rows)
    ).all()
    removed = 0
    for kind, name, count in list(over):
        series_of = and_(PowerSampleRow.kind == kind, PowerSampleRow.name == name)
        oldest = select(PowerSampleRow.id).where(series_of).order_by(PowerSampleRow.at)
        ids = list(s.scalars(oldest.limit(count - max_rows)))
        s.execute(delete(PowerSampleRow).where(PowerSampleRow.id.in_(ids)))
        removed += len(ids)
    return removed


def add_samples(store: Store, rows: Sequence[tuple[str, str, float]], at: datetime) -> None:
    """Raw samples of many nodes at once, ``(node, rack, watts)``, and their racks' sums
    (the simulated fleet after a sweep: one batch insert, no per-node look-up)."""
    if not rows:
        return
    racks: dict[str, float] = defaultdict(float)
    for _, rack, watts in rows:
        if rack:
            racks[rack] += watts
    values = [
        {"kind": NODE, "name": n, "step": 0, "at": at, "watts": w, "peak_watts": w, "samples": 1}
        for n, _, w in rows
    ] + [
        {"kind": RACK, "name": r, "step": 0, "at": at, "watts": w, "peak_watts": w, "samples": 1}
        for r, w in sorted(racks.items())
    ]
    with store.transaction() as tx:
        tx.insert_rows(table_of(PowerSampleRow), values)
