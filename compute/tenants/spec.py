"""The tenant spec as users write it (TOML), validated against the configured pools."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from compute.config import PoolSettings
from compute.errors import InvalidInput
from scheduler.tenants import GpuQuota, TenantSpec

# Names become Slurm accounts and Kubernetes namespaces: keep to what both accept.
NAME = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$")


class QuotaModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pool: str = Field(description="A configured pool.")
    gpus: int = Field(ge=0, le=100_000, description="GPUs the tenant may hold at once in it.")
    gpu_model: str | None = Field(None, description="Must match the pool's model if given.")


class TenantModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="3-40 characters: lower-case letters, digits and '-'.")
    users: list[str] = Field(default_factory=list, description="Login names of its users.")
    quotas: list[QuotaModel] = Field(default_factory=list)
    gpu_hours_budget: float | None = Field(
        None, gt=0, description="GPU-hours it may use in total (Slurm: GrpTRESMins, NoDecay)."
    )
    max_wall_time_hours: float | None = Field(
        None, gt=0, le=24 * 365, description="Longest a job may run."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(
                "must be 3-40 characters of lower-case letters, digits and '-', "
                "starting with a letter"
            )
        return v

    @field_validator("users")
    @classmethod
    def _users(cls, v: list[str]) -> list[str]:
        bad = [u for u in v if not USER.match(u)]
        if bad:
            raise ValueError(f"not valid login names: {', '.join(bad)}")
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
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        what = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(f"{source}: {loc}: {what}") from None
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
    )


def load_tenant(path: Path, pools: Sequence[PoolSettings]) -> TenantSpec:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"tenant spec {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"tenant spec {path} is not valid TOML: {exc}") from None
    return parse_tenant(data, pools, str(path))


def spec_to_json(spec: TenantSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "users": list(spec.users),
        "quotas": [{"pool": q.pool, "gpu_model": q.gpu_model, "gpus": q.gpus} for q in spec.quotas],
        "gpu_hours_budget": spec.gpu_hours_budget,
        "max_wall_time_minutes": spec.max_wall_time_minutes,
        "suspended": spec.suspended,
    }


def spec_from_json(raw: Mapping[str, Any]) -> TenantSpec:
    return TenantSpec(
        name=raw["name"],
        users=tuple(raw["users"]),
        quotas=tuple(GpuQuota(q["pool"], q["gpu_model"], int(q["gpus"])) for q in raw["quotas"]),
        gpu_hours_budget=raw.get("gpu_hours_budget"),
        max_wall_time_minutes=raw.get("max_wall_time_minutes"),
        suspended=bool(raw.get("suspended", False)),
    )
