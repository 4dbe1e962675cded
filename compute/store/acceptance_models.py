"""The table of tranche acceptance (compute/services/acceptance.py): one row per tranche of
new capacity, its nodes, its threshold, where its run stands and its report.

Imported wherever the store's metadata must know every table (compute/store/models.py's
``Base`` is shared)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from compute.store.models import Base


class TrancheRow(Base):
    """A tranche: its nodes (JSON list), state (created, running, judged, live, failed),
    the run's progress per node (JSON) and, once judged, its report (JSON)."""

    __tablename__ = "acceptance_tranches"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    nodes: Mapped[str] = mapped_column(Text)
    threshold: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))  # "", burn_in, pair_test, done
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime | None]
    judged_at: Mapped[datetime | None]
    progress: Mapped[str] = mapped_column(Text)  # JSON: node -> what its run did so far
    report: Mapped[str] = mapped_column(Text)  # JSON, "" before the verdict
    error: Mapped[str] = mapped_column(Text)
    # Every write names the version it read: two control planes never both advance a run.
    version: Mapped[int] = mapped_column(Integer)
