"""Tables of job impact (compute/store/impact.py): which jobs and pods a node's fault hit,
whose they were and the GPU-hours they lost; how far the drains and failures are looked at.

Imported wherever the store's metadata must know every table (compute/store/models.py's
``Base`` is shared)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from compute.store.models import Base


class JobHitRow(Base):
    """One job (Slurm) or pod (Kubernetes) a fault hit: the first fault to hit it only, so
    a job's lost GPU-hours count once however many of its nodes fail."""

    __tablename__ = "job_hits"
    pool: Mapped[str] = mapped_column(String(128), primary_key=True)
    work: Mapped[str] = mapped_column(String(255), primary_key=True)  # job id, namespace/pod
    tenant: Mapped[str] = mapped_column(String(128))  # "" when the work has none
    node: Mapped[str] = mapped_column(String(255))
    # "drain": on the node when computectl drained it for a fault; "node_fail": ended by its
    # node's failure (Slurm NODE_FAIL, a pod Failed) on a node with a finding.
    cause: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]  # the drain, or the work's end
    gpus: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))  # scheduler.work's end state, when read
    gpu_hours: Mapped[float] = mapped_column(Float)  # start to ``at`` (or its end) x GPUs
    check: Mapped[str] = mapped_column(String(64))  # the finding's check ("" unknown)
    reason: Mapped[str] = mapped_column(Text)
    event_id: Mapped[int | None] = mapped_column(Integer)  # the drain event

    __table_args__ = (Index("ix_job_hits_tenant_at", "tenant", "at"),)


class JobHitMarkRow(Base):
    """How far drains (by event id) and failed work (by time) are looked at (one row)."""

    __tablename__ = "job_hit_marks"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    failed_until: Mapped[datetime]
