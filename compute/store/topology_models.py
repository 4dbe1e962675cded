"""Tables of topology, rack budgets and capacity planning (compute/store/topology.py):
what the configuration adds to a rack (row, PDUs, cooling) and a room (cooling), where the
configuration placed each node, each rack's standing against its budget, and the capacity
history (GPUs by state, pool and model, one sample per interval).

Imported wherever the store's metadata must know every table (compute/store/models.py's
``Base`` is shared)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from compute.store.models import Base


class RackDetailRow(Base):
    __tablename__ = "rack_details"
    rack: Mapped[str] = mapped_column(String(128), primary_key=True)
    row: Mapped[str] = mapped_column(String(128), default="")
    pdus: Mapped[list[str]] = mapped_column(JSON, default=list)
    cooling_limit_watts: Mapped[float | None] = mapped_column(Float, nullable=True)


class RoomDetailRow(Base):
    __tablename__ = "room_details"
    room: Mapped[str] = mapped_column(String(128), primary_key=True)
    cooling_limit_watts: Mapped[float | None] = mapped_column(Float, nullable=True)


class NodePlaceRow(Base):
    """The rack the configuration last placed a node in: a node still there is moved when
    the configuration moves it; one a workload manager placed elsewhere is left alone."""

    __tablename__ = "node_places"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    rack: Mapped[str] = mapped_column(String(128))


class RackBudgetRow(Base):
    """A rack's standing: over its budget (or forecast to be) since when, as last read."""

    __tablename__ = "rack_budgets"
    rack: Mapped[str] = mapped_column(String(128), primary_key=True)
    over: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime]
    at: Mapped[datetime]
    watts: Mapped[float] = mapped_column(Float)
    forecast_watts: Mapped[float] = mapped_column(Float)
    limit_watts: Mapped[float] = mapped_column(Float)
    # Nodes whose GPUs the policy capped while the rack was over (reverted once under).
    capped: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CapacitySampleRow(Base):
    __tablename__ = "capacity_samples"
    __table_args__ = (Index("ix_capacity_samples_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    pool: Mapped[str] = mapped_column(String(128))
    gpu_model: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    gpus: Mapped[int] = mapped_column(Integer)
