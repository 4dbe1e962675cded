"""Tables of power (compute/store/power.py): each node's latest reading, the power time series
of nodes and racks, and GPU power caps with their audit fields.

Kept out of compute/store/models.py (one writer per file); they share its ``Base``, so the
migrations' metadata holds them once this module is imported."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from compute.store.models import Base


class PowerLatestRow(Base):
    """A node's latest power reading: per GPU (draw and limits) and the node's own (BMC)."""

    __tablename__ = "power_latest"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    rack: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime]
    gpu_watts: Mapped[float] = mapped_column(Float)
    # The BMC's reading of the whole node (IPMI DCMI); None where it has none.
    node_watts: Mapped[float | None] = mapped_column(Float, nullable=True)
    node_source: Mapped[str] = mapped_column(String(32), default="")
    node_error: Mapped[str] = mapped_column(String(200), default="")
    gpus: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class PowerSampleRow(Base):
    """One point of a power series: a node's or a rack's draw. ``step`` 0 is a raw sample;
    older ones are folded into buckets of ``step`` seconds (mean and peak)."""

    __tablename__ = "power_samples"
    __table_args__ = (Index("ix_power_samples_series", "kind", "name", "step", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # node | rack
    name: Mapped[str] = mapped_column(String(255))
    step: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime]
    watts: Mapped[float] = mapped_column(Float)
    peak_watts: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=1)


class PowerCapRow(Base):
    """A GPU power cap on one node: who asked, why, and what the node did with it."""

    __tablename__ = "power_caps"
    __table_args__ = (Index("ix_power_caps_node_state", "node", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(255))
    rack: Mapped[str] = mapped_column(String(128), default="")
    # The GPU indices capped; None: every GPU of the node.
    gpus: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    watts: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # operator | policy
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime]
    # Per GPU index (as text, JSON's keys): the limit before, as clamped, as read back.
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    clamped: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detail: Mapped[str] = mapped_column(Text, default="")
    reverted_by: Mapped[str] = mapped_column(String(255), default="")
    revert_reason: Mapped[str] = mapped_column(Text, default="")
