"""Tables of energy per tenant (compute/store/energy.py): hourly joules per holder, pool and
GPU model; the fleet's mark (how far energy is counted); gaps not counted.

Imported wherever the store's metadata must know every table (compute/store/models.py's
``Base`` is shared)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from compute.store.models import Base


class EnergyHourRow(Base):
    """Energy a holder drew in one UTC hour, in whole millijoules (so sums are exact).
    ``holder``: "tenant" (``tenant`` names it), "idle" or "out_of_service" (``tenant``
    empty)."""

    __tablename__ = "energy_hours"
    holder: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    pool: Mapped[str] = mapped_column(String(128), primary_key=True)
    gpu_model: Mapped[str] = mapped_column(String(128), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    it_mj: Mapped[int] = mapped_column(BigInteger)
    facility_mj: Mapped[int] = mapped_column(BigInteger)
    # GPU-microseconds held, as the sweeps saw the allocations (the energy's denominator).
    gpu_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_energy_hours_hour", "hour"),)


class EnergyTotalRow(Base):
    """Energy a holder drew in all, never deleted: the counters of /metrics (hours go with
    retention; a counter must not go down), read in one small scan."""

    __tablename__ = "energy_totals"
    holder: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    pool: Mapped[str] = mapped_column(String(128), primary_key=True)
    gpu_model: Mapped[str] = mapped_column(String(128), primary_key=True)
    it_mj: Mapped[int] = mapped_column(BigInteger)
    facility_mj: Mapped[int] = mapped_column(BigInteger)


class EnergyMarkRow(Base):
    """How far the fleet's energy is counted (one row, ``name`` "fleet")."""

    __tablename__ = "energy_marks"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    counted_until: Mapped[datetime]


class EnergyGapRow(Base):
    """An interval between two sweeps longer than [energy] max_gap_seconds: not counted."""

    __tablename__ = "energy_gaps"
    start: Mapped[datetime] = mapped_column(primary_key=True)
    end: Mapped[datetime]
