"""The tenant spec as users write it (TOML), validated against the configured pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from compute.config import PoolSettings
from compute.errors import InvalidInput
from compute.validation import (
    MAX_GPU_HOURS_BUDGET,
    MAX_GPUS_PER_QUOTA,
    MAX_QUOTAS,
    MAX_USERS,
    MAX_WALL_TIME_HOURS,
    TENANT_NAME,
    TENANT_NAME_HINT,
    USER_NAME,
    USER_NAME_HINT,
    FiniteFloat,
    PoolName,
    ShortText,
    StrictInt,
    TenantName,
    first_error,
    read_toml,
)
from scheduler.tenants import GpuQuota, TenantSpec


class QuotaModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pool: PoolName = Field(description="A configured pool.")
    gpus: StrictInt = Field(
        ge=0, le=MAX_GPUS_PER_QUOTA, description="GPUs the tenant may hold at once in it."
    )
    gpu_model: ShortText | None = Field(None, description="Must match the pool's model if given.")


class TenantModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: TenantName = Field(description=f"{TENANT_NAME_HINT}.")
    users: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_USERS, description="Login names of its users."
    )
    quotas: list[QuotaModel] = Field(default_factory=list, max_length=MAX_QUOTAS)
    gpu_hours_budget: FiniteFloat | None = Field(
        None,
        # Slurm counts in whole minutes: less than one would round to a budget of 0.
        ge=1 / 60,
        le=MAX_GPU_HOURS_BUDGET,
        description="GPU-hours it may use in total (Slurm: GrpTRESMins, NoDecay); "
        "at least one GPU-minute.",
    )
    max_wall_time_hours: FiniteFloat | None = Field(
        None,
        ge=1 / 60,
        le=MAX_WALL_TIME_HOURS,
        description="Longest a job may run; at least one minute.",
    )
    internal: StrictBool = Field(
        False,
        description="The operator's own training: it may borrow GPUs that customers bought "
        "and leave idle, and is preempted first when a customer wants them back.",
    )

    @field_validator("users")
    @classmethod
    def _users(cls, v: list[str]) -> list[str]:
        bad = [u for u in v if USER_NAME.fullmatch(u) is None]
        if bad:
            shown = ", ".join(ascii(u) for u in bad[:5])
            raise ValueError(f"not valid login names: {shown} ({USER_NAME_HINT})")
        if len(set(v)) != len(v):
            raise ValueError("users are listed twice")
        return v


def parse_tenant(
    data: Mapping[str, Any], pools: Sequence[PoolSettings], source: str = "tenant spec"
) -> TenantSpec:
    raw = data.get("tenant", data) if isinstance(data, Mapping) else data
    try:
        model = TenantModel.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: {first_error(exc.errors())}") from None
    return tenant_from_model(model, pools, source)


def tenant_from_model(
    model: TenantModel, pools: Sequence[PoolSettings], source: str = "tenant spec"
) -> TenantSpec:
    """The spec of a validated model, checked against the configured pools."""
    by_name = {p.name: p for p in pools}
    quotas = []
    seen: set[str] = set()
    for q in model.quotas:
        pool = by_name.get(q.pool)
        if pool is None:
            raise InvalidInput(
                f"{source}: unknown pool {q.pool!r}; pools: {', '.join(sorted(by_name))}"
            )
        if q.gpu_model is not None and q.gpu_model != pool.gpu_model:
            raise InvalidInput(
                f"{source}: pool {q.pool} has {pool.gpu_model} GPUs, not {q.gpu_model}"
            )
        if q.pool in seen:
            raise InvalidInput(f"{source}: pool {q.pool} has two quotas")
        seen.add(q.pool)
        quotas.append(GpuQuota(pool=q.pool, gpu_model=pool.gpu_model, gpus=q.gpus))
    wall = model.max_wall_time_hours
    return TenantSpec(
        name=model.name,
        users=tuple(model.users),
        quotas=tuple(quotas),
        gpu_hours_budget=model.gpu_hours_budget,
        max_wall_time_minutes=round(wall * 60) if wall is not None else None,
        internal=model.internal,
    )


def load_tenant(path: Path, pools: Sequence[PoolSettings]) -> TenantSpec:
    try:
        data = read_toml(path, "tenant spec")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return parse_tenant(data, pools, str(path))


def load_tenants(
    paths: Sequence[Path], pools: Sequence[PoolSettings]
) -> tuple[list[TenantSpec], dict[str, InvalidInput]]:
    """Many spec files, as the batch route takes many specs: a file that cannot be read as
    TOML stops them all (nothing is asked of any backend), a spec that does not hold against
    the pools is refused on its own (by its name, or its path) and holds back no other."""
    datas = []
    for path in paths:
        try:
            datas.append((path, read_toml(path, "tenant spec")))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    specs: list[TenantSpec] = []
    refused: dict[str, InvalidInput] = {}
    for path, data in datas:
        try:
            specs.append(parse_tenant(data, pools, str(path)))
        except InvalidInput as exc:
            name = data.get("name")
            label = name if isinstance(name, str) and TENANT_NAME.fullmatch(name) else str(path)
            refused[label] = exc
    return specs, refused


def spec_to_json(spec: TenantSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "users": list(spec.users),
        "quotas": [{"pool": q.pool, "gpu_model": q.gpu_model, "gpus": q.gpus} for q in spec.quotas],
        "gpu_hours_budget": spec.gpu_hours_budget,
        "max_wall_time_minutes": spec.max_wall_time_minutes,
        "suspended": spec.suspended,
        "internal": spec.internal,
    }


def spec_from_json(raw: Mapping[str, Any]) -> TenantSpec:
    return TenantSpec(
        name=raw["name"],
        users=tuple(raw["users"]),
        quotas=tuple(GpuQuota(q["pool"], q["gpu_model"], int(q["gpus"])) for q in raw["quotas"]),
        gpu_hours_budget=raw.get("gpu_hours_budget"),
        max_wall_time_minutes=raw.get("max_wall_time_minutes"),
        suspended=bool(raw.get("suspended", False)),
        # Records stored before the flag existed are customers.
        internal=bool(raw.get("internal", False)),
    )
