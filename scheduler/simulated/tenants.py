"""The TenantBackend protocol over the simulated cluster: an account with per-pool GPU quotas."""

from __future__ import annotations

from scheduler.protocol import JobInfo
from scheduler.simulated.backend import ClusterAccess
from scheduler.simulated.cluster import SimJob, SimTenant
from scheduler.tenants import Change, ChangeKind, TenantBusy, TenantSpec


def _desired(spec: TenantSpec) -> SimTenant:
    return SimTenant(
        name=spec.name,
        users=sorted(spec.users),
        quotas={q.pool: q.gpus for q in spec.quotas},
        max_wall_seconds=(
            spec.max_wall_time_minutes * 60.0 if spec.max_wall_time_minutes is not None else None
        ),
        suspended=spec.suspended,
    )


def _diff(name: str, live: SimTenant | None, want: SimTenant | None) -> list[Change]:
    if live is None and want is None:
        return []
    if live is None:
        assert want is not None
        out = [Change(ChangeKind.CREATE, f"account {name}", "", f"users={','.join(want.users)}")]
        out += [
            Change(ChangeKind.CREATE, f"quota {name}/{pool}", "", f"gpus={g}")
            for pool, g in sorted(want.quotas.items())
        ]
        if want.max_wall_seconds is not None:
            out.append(
                Change(
                    ChangeKind.CREATE,
                    f"limit {name}/wall_time",
                    "",
                    f"{want.max_wall_seconds / 60:.0f} min",
                )
            )
        if want.suspended:
            out.append(Change(ChangeKind.CREATE, f"hold {name}", "", "suspended"))
        return out
    if want is None:
        return [Change(ChangeKind.DELETE, f"account {name}", f"users={','.join(live.users)}", "")]
    out = []
    if live.users != want.users:
        out.append(
            Change(
                ChangeKind.UPDATE,
                f"account {name}",
                f"users={','.join(live.users)}",
                f"users={','.join(want.users)}",
            )
        )
    for pool in sorted(set(live.quotas) | set(want.quotas)):
        before, after = live.quotas.get(pool), want.quotas.get(pool)
        if before == after:
            continue
        kind = (
            ChangeKind.CREATE
            if before is None
            else ChangeKind.DELETE
            if after is None
            else ChangeKind.UPDATE
        )
        out.append(
            Change(
                kind,
                f"quota {name}/{pool}",
                "" if before is None else f"gpus={before}",
                "" if after is None else f"gpus={after}",
            )
        )
    if live.max_wall_seconds != want.max_wall_seconds:

        def fmt(v: float | None) -> str:
            return "" if v is None else f"{v / 60:.0f} min"

        out.append(
            Change(
                ChangeKind.UPDATE,
                f"limit {name}/wall_time",
                fmt(live.max_wall_seconds),
                fmt(want.max_wall_seconds),
            )
        )
    if live.suspended != want.suspended:
        out.append(
            Change(
                ChangeKind.UPDATE,
                f"hold {name}",
                "suspended" if live.suspended else "active",
                "suspended" if want.suspended else "active",
            )
        )
    return out


class SimulatedTenants:
    kind = "simulated"

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access

    def plan(self, spec: TenantSpec) -> list[Change]:
        with self._access() as c:
            return _diff(spec.name, c.tenants.get(spec.name), _desired(spec))

    def apply(self, spec: TenantSpec) -> list[Change]:
        with self._access() as c:
            changes = _diff(spec.name, c.tenants.get(spec.name), _desired(spec))
            if changes:
                c.set_tenant(_desired(spec))
            return changes

    def plan_delete(self, name: str) -> list[Change]:
        with self._access() as c:
            return _diff(name, c.tenants.get(name), None)

    def delete(
        self, name: str, force: bool = False, grace_seconds: int = 30, purge_data: bool = False
    ) -> list[Change]:
        with self._access() as c:
            jobs = self._jobs(c.tenant_jobs(name))
            if jobs and not force:
                raise TenantBusy(name, jobs)
            for job in c.tenant_jobs(name):
                c.cancel(job.id)  # the simulation has no grace to wait
            changes = _diff(name, c.tenants.get(name), None)
            c.drop_tenant(name)
            return changes

    def jobs(self, name: str) -> list[JobInfo]:
        with self._access() as c:
            return self._jobs(c.tenant_jobs(name))

    def managed(self) -> list[str]:
        with self._access() as c:
            return sorted(c.tenants)

    @staticmethod
    def _jobs(jobs: list[SimJob]) -> list[JobInfo]:
        return [
            JobInfo(
                id=str(j.id),
                tenant=j.tenant,
                gpus=j.gpus_per_node * (len(j.nodes) or j.nodes_wanted),
                state="running" if j.start is not None else "pending",
            )
            for j in jobs
        ]
