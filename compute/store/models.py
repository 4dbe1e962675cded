"""Tables. Rows stay inside the store; the repository maps them to compute.domain types."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC everywhere; read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class SiteRow(Base):
    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)


class RoomRow(Base):
    __tablename__ = "rooms"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    site: Mapped[str] = mapped_column(String(128))


class RackRow(Base):
    __tablename__ = "racks"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    room: Mapped[str] = mapped_column(String(128))
    power_budget_watts: Mapped[float] = mapped_column(Float)


class PoolRow(Base):
    __tablename__ = "pools"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    backend: Mapped[str] = mapped_column(String(32))
    gpu_model: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16), default="enforce", server_default="enforce")
    observe_checks: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    mode_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    mode_actor: Mapped[str] = mapped_column(String(255), default="", server_default="")


class NodeRow(Base):
    __tablename__ = "nodes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    pool: Mapped[str] = mapped_column(String(128), index=True)
    rack: Mapped[str] = mapped_column(String(128))
    gpu_model: Mapped[str] = mapped_column(String(64))
    gpu_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32), index=True)
    state_since: Mapped[datetime]
    drain_reason: Mapped[str] = mapped_column(Text, default="")
    drain_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    drain_actor: Mapped[str] = mapped_column(String(255), default="")
    automation_drain: Mapped[bool] = mapped_column(Boolean, default=False)
    deferred_reason: Mapped[str] = mapped_column(Text, default="")
    jobs_running: Mapped[int] = mapped_column(Integer, default=0)
    gpus_allocated: Mapped[int] = mapped_column(Integer, default=0)
    backend_state: Mapped[str] = mapped_column(String(64), default="")
    power_watts: Mapped[float] = mapped_column(Float, default=0.0)
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    health: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attention_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    would: Mapped[str] = mapped_column(Text, default="", server_default="")
    switch: Mapped[str] = mapped_column(String(128), default="", server_default="")


class GpuRow(Base):
    __tablename__ = "gpus"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64), default="")


class CheckResultRow(Base):
    __tablename__ = "check_results"
    __table_args__ = (Index("ix_check_results_node_at", "node", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(255))
    check: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))
    suite: Mapped[str] = mapped_column(String(16))
    fatal: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]]
    gpus: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(index=True)


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    node: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    pool: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]]


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]]
    # From where: a client address, or "local" (the CLI on the data directory, the loop).
    source: Mapped[str] = mapped_column(
        String(255),
        default=lambda ctx: _source_of(ctx.get_current_parameters()),
        server_default="local",
    )
    # "ok", "refused: ..." or "failed: ...".
    result: Mapped[str] = mapped_column(Text, default="ok", server_default="ok")
    # The tenant it concerns, so a tenant-admin's read is a WHERE.
    tenant: Mapped[str | None] = mapped_column(
        String(64),
        nullable=True,
        index=True,
        default=lambda ctx: _tenant_of(ctx.get_current_parameters()),
    )


# Every service writes its entry with the actor it was given; an API request's actor
# (compute.auth.principal.Actor, a str) also says from where and for which tenant. The
# columns' defaults read them from the row's actor, so no service has to pass them on,
# whichever way the row is inserted (the ORM, or Core as Tx.add_audits does).


def _source_of(row: dict[str, Any]) -> str:
    source = getattr(row.get("actor"), "source", None)
    return source if isinstance(source, str) else "local"


def _tenant_of(row: dict[str, Any]) -> str | None:
    """The actor's tenant; else a tenant's own changes (tenant.apply, tenant.suspend, ...)
    name it as the target, and others about a tenant's things (its tokens) in the detail."""
    tenant = getattr(row.get("actor"), "tenant", None)
    if isinstance(tenant, str):
        return tenant
    action, detail = row.get("action"), row.get("detail")
    if isinstance(action, str) and action.startswith("tenant."):
        return str(row.get("target"))
    tenant = detail.get("tenant") if isinstance(detail, dict) else None
    return tenant if isinstance(tenant, str) else None


class ApiTokenRow(Base):
    """An API token: its digest, never the token (compute/auth/tokens.py)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SessionRow(Base):
    """A logged-in browser: the cookie's and the CSRF token's digests, and who it is."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    csrf: Mapped[str] = mapped_column(String(64))


class AllocationRow(Base):
    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    pool: Mapped[str] = mapped_column(String(128))
    node: Mapped[str] = mapped_column(String(255))
    gpus: Mapped[int] = mapped_column(Integer)
    job: Mapped[str] = mapped_column(String(128))


class RackPowerRow(Base):
    __tablename__ = "rack_power"
    __table_args__ = (Index("ix_rack_power_rack_at", "rack", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rack: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    watts: Mapped[float] = mapped_column(Float)


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]


class TenantRow(Base):
    __tablename__ = "tenants"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LeaseRow(Base):
    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(128))
    pool: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    cause: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    nodes: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    released_by: Mapped[str] = mapped_column(String(255), default="", server_default="")


class QuotaRequestRow(Base):
    """A tenant's request to change one pool's GPU quota, and what an operator decided."""

    __tablename__ = "quota_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    pool: Mapped[str] = mapped_column(String(128))
    gpu_model: Mapped[str] = mapped_column(String(128))
    gpus: Mapped[int] = mapped_column(Integer)
    # The pool's quota when it was asked for (None: the tenant had none in the pool).
    current: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    # pending, applying (an operator's approval is being applied), approved, declined, failed
    state: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


# -- GPU time of pods, counted as the control plane saw them (compute/store/usage.py) --------


class GpuUsagePodRow(Base):
    """How far one pod's GPU time has been counted: each interval is counted once."""

    __tablename__ = "gpu_usage_pods"
    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    pool: Mapped[str] = mapped_column(String(128))
    gpu_model: Mapped[str] = mapped_column(String(128))
    gpus: Mapped[int] = mapped_column(Integer)
    counted_until: Mapped[datetime] = mapped_column(index=True)


class GpuUsageDayRow(Base):
    """GPU-microseconds of a tenant's pods per UTC day, pool and GPU model."""

    __tablename__ = "gpu_usage_days"
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool: Mapped[str] = mapped_column(String(128), primary_key=True)
    gpu_model: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    gpu_us: Mapped[int] = mapped_column(BigInteger, default=0)


class TenantBudgetRow(Base):
    """A tenant's GPU time counted since ``since`` against its GPU-hour budget, the last
    threshold recorded (0, 80, 100) and whether its new GPU pods are held back."""

    __tablename__ = "tenant_budgets"
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    gpu_us: Mapped[int] = mapped_column(BigInteger, default=0)
    since: Mapped[datetime]
    level: Mapped[int] = mapped_column(Integer, default=0)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime]


# -- tenants' drift, as the last check saw it (compute/store/drift.py) --------------------------


class TenantDriftRow(Base):
    """One of a tenant's objects in a backend that differs from its spec, as last seen:
    drifting since ``since``, its live or spec state last different at ``changed_at``."""

    __tablename__ = "tenant_drift"
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    backend: Mapped[str] = mapped_column(String(160), primary_key=True)
    object: Mapped[str] = mapped_column(String(512), primary_key=True)
    change: Mapped[str] = mapped_column(String(16))
    live: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime]
    changed_at: Mapped[datetime]


class TenantDriftCheckRow(Base):
    """A backend's drift checks: the last one tried, the last one that read it, and why the
    last one tried could not (empty when it could)."""

    __tablename__ = "tenant_drift_checks"
    backend: Mapped[str] = mapped_column(String(160), primary_key=True)
    tried_at: Mapped[datetime]
    checked_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
