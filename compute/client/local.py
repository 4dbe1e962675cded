"""The CLI on the data directory: settings, the store (or the whole runtime where a command
acts), a service call and the same view the API would answer, made JSON-plain the way the
API's encoder makes it (so -o json prints the same thing either way).

What a call needs is imported when it runs: `nodes list` loads the store, not the backends.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compute.client.acceptance_ops import AcceptanceLocal
from compute.client.capacity_ops import CapacityLocal
from compute.client.energy_ops import EnergyLocal
from compute.client.floors_ops import FloorsLocal
from compute.client.job_impact_ops import JobImpactLocal
from compute.client.lemon_ops import LemonLocal
from compute.client.power_ops import PowerLocal
from compute.client.protocol import View
from compute.errors import ConfigError

if TYPE_CHECKING:
    from compute.auth.principal import Principal
    from compute.config import Settings
    from compute.runtime import Runtime
    from compute.services.batch import Batch
    from compute.services.tenants_batch import TenantBatch
    from compute.store import Store


def plain(view: dict[str, Any]) -> View:
    """A view as JSON would give it back: what the API's encoder makes of it."""
    return {str(k): _plain(v) for k, v in view.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return plain(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return _plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return value


def usable_data_dir(path: Path) -> None:
    """The data directory exists (made if missing) and can be written, or one line says why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"data directory {path} cannot be created: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"data directory {path} is not writable")


class LocalClient(
    PowerLocal,
    CapacityLocal,
    EnergyLocal,
    FloorsLocal,
    JobImpactLocal,
    AcceptanceLocal,
    LemonLocal,
):
    """Settings built once at start-up; the runtime (or the store alone) built on first use."""

    def __init__(self, config_path: Path | None, overrides: dict[str, Any], actor: str) -> None:
        self.config_path = config_path
        self.overrides = overrides
        self.actor = actor
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None
        self._store: Store | None = None

    # -- what the commands that act on the data directory share ---------------------------

    def settings(self, extra: dict[str, Any] | None = None) -> Settings:
        if self._settings is None or extra:
            merged = dict(self.overrides)
            for k, v in (extra or {}).items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            from compute.config import load_settings

            self._settings = load_settings(self.config_path, overrides=merged)
        return self._settings

    def runtime(self, extra: dict[str, Any] | None = None) -> Runtime:
        if self._runtime is None:
            settings = self.settings(extra)
            usable_data_dir(settings.data_dir)
            from compute.runtime import Runtime

            self._runtime = Runtime.build(settings)
        return self._runtime

    def store(self) -> Store:
        """The store alone, for calls that only read it: no backends, no simulation."""
        if self._runtime is not None:
            return self._runtime.store
        if self._store is None:
            settings = self.settings()
            usable_data_dir(settings.data_dir)
            from compute.store import Store

            self._store = Store.open(settings.sqlalchemy_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    # -- nodes ----------------------------------------------------------------------------

    def nodes(self, pool: str | None, state: str | None) -> list[View]:
        from compute.services import fleet, lemons
        from compute.views import node_view

        store = self.store()
        marks = lemons.marks(store)
        found = fleet.nodes(store, pool=pool, state=state)
        return [plain(node_view(n, marks.get(n.name))) for n in found]

    def node(self, name: str) -> View:
        from compute.services import lemons
        from compute.views import node_detail_view

        rt = self.runtime()
        return plain(node_detail_view(rt.nodes.detail(name), lemons.mark_of(rt.store, name)))

    def rma_report(self, name: str) -> View:
        from compute.services.rma import rma_report
        from compute.views import rma_report_view

        rt = self.runtime()
        return plain(rma_report_view(rma_report(rt.store, rt.nodes.get(name))))

    def drain(self, targets: Sequence[str], reason: str, now: bool) -> View:
        from compute.views import drained_view

        batch = self.runtime().nodes.drain_many(targets, reason, actor=self.actor, now_mode=now)
        # What each drain left running (a disruption budget) is kept with the node.
        views = [drained_view(n, n.health.drain_blocked) for n in batch.done]
        return _batch(batch, "drained", views)

    def resume(self, targets: Sequence[str], force: bool, skip_burn_in: bool) -> View:
        from compute.views import node_view

        batch = self.runtime().nodes.resume_many(
            targets, actor=self.actor, force=force, skip_burn_in=skip_burn_in
        )
        return _batch(batch, "resumed", [node_view(n) for n in batch.done])

    def retire(self, name: str) -> View:
        from compute.views import node_view

        return plain(node_view(self.runtime().nodes.retire(name, actor=self.actor)))

    # -- the fleet ------------------------------------------------------------------------

    def events(self, node: str | None, kinds: Sequence[str], limit: int) -> list[View]:
        from compute.services import fleet
        from compute.views import event_view

        found = fleet.events(self.runtime().store, node, tuple(kinds), limit)
        return [plain(event_view(e)) for e in found]

    def capacity(self) -> View:
        from compute.services.fleet import fleet_capacity
        from compute.views import capacity_view

        return plain(capacity_view(fleet_capacity(self.runtime().store)))

    def sweep(self) -> View:
        from compute.services.leadership import Leadership, lease_seconds, under_lease
        from compute.services.sweep_gc import all_collections_held
        from compute.views import sweep_report_view

        # A process that sweeps once (cron, an operator): what it builds lives until it ends,
        # and each collection walked it all again (0.45 s of a first sweep of 10,240 nodes
        # went to four full ones, 0.22 s to young ones).
        with all_collections_held():
            rt = self.runtime()
            report = under_lease(Leadership(rt.store, ttl=lease_seconds(rt.settings)), rt.sweep)
            return plain(sweep_report_view(report))

    # -- pools and the brake --------------------------------------------------------------

    def pools(self) -> list[View]:
        from compute.services.pools import pool_view

        return [plain(pool_view(p)) for p in self.runtime().store.pools()]

    def set_pool_mode(self, name: str, mode: str, check: str | None) -> View:
        from compute.services.pools import pool_view, set_mode

        rt = self.runtime()
        return plain(pool_view(set_mode(rt.store, rt.clock, name, mode, check, self.actor)))

    def pool_report(self, name: str, since: str) -> View:
        from compute.services.pools import parse_window, report, report_view

        rt = self.runtime()
        return plain(report_view(report(rt.store, rt.clock, name, parse_window(since))))

    def incidents(self, state: str | None, limit: int) -> list[View]:
        from compute.services.incidents import incident_view, list_incidents

        return [plain(incident_view(i)) for i in list_incidents(self.runtime().store, state, limit)]

    def incident(self, id_: int) -> View:
        from compute.services.incidents import get_incident, incident_view

        return plain(incident_view(get_incident(self.runtime().store, id_)))

    def release_incident(self, id_: int) -> View:
        from compute.services.incidents import incident_view, release

        rt = self.runtime()
        return plain(incident_view(release(rt.store, rt.clock, id_, self.actor)))

    # -- tenants --------------------------------------------------------------------------

    def tenants(self) -> list[View]:
        from compute.services import fleet
        from compute.views import tenant_view

        return [plain(tenant_view(t)) for t in fleet.tenants(self.runtime().store)]

    def tenant(self, name: str) -> View:
        from compute.services import fleet
        from compute.views import tenant_detail_view

        rt = self.runtime()
        return plain(tenant_detail_view(fleet.tenant_detail(rt.store, rt.tenants.jobs, name)))

    def plan_tenant(self, spec_file: Path) -> View:
        from compute.tenants.spec import load_tenant

        rt = self.runtime()
        return plain(rt.tenants.plan(load_tenant(spec_file, rt.settings.effective_pools)).as_dict())

    def apply_tenant(self, spec_file: Path) -> View:
        from compute.tenants.spec import load_tenant

        rt = self.runtime()
        spec = load_tenant(spec_file, rt.settings.effective_pools)
        return plain(rt.tenants.apply(spec, actor=self.actor).as_dict())

    def plan_tenants(self, spec_files: Sequence[Path]) -> View:
        return self._tenant_batch(spec_files, "planned")

    def apply_tenants(self, spec_files: Sequence[Path]) -> View:
        return self._tenant_batch(spec_files, "applied")

    def _tenant_batch(self, spec_files: Sequence[Path], verb: str) -> View:
        """As the batch route does: an unreadable file stops all, a spec that does not hold
        is refused on its own, the others are planned or applied."""
        from compute.services.tenants_batch import TenantBatch, apply_many, plan_many
        from compute.tenants.spec import load_tenants

        rt = self.runtime()
        specs, refused = load_tenants(spec_files, rt.settings.effective_pools)
        batch = TenantBatch()
        if specs and verb == "applied":
            batch = apply_many(rt.tenants, specs, actor=self.actor)
        elif specs:
            batch = plan_many(rt.tenants, specs)
        return _tenant_batch(TenantBatch(batch.done, {**refused, **batch.refused}), verb)

    def suspend_tenant(self, name: str) -> View:
        return plain(self.runtime().tenants.suspend(name, actor=self.actor).as_dict())

    def resume_tenant(self, name: str) -> View:
        return plain(self.runtime().tenants.resume(name, actor=self.actor).as_dict())

    def delete_tenant(self, name: str, force: bool, grace_seconds: int, purge_data: bool) -> View:
        plan = self.runtime().tenants.delete(
            name, actor=self.actor, force=force, grace_seconds=grace_seconds, purge_data=purge_data
        )
        return plain(plan.as_dict())

    def tenant_usage(self, name: str, days: int) -> View:
        from compute.services.usage import tenant_usage
        from compute.views import usage_view

        return plain(usage_view(tenant_usage(self.runtime(), name, days)))

    def kubeconfig(self, name: str, hours: float) -> str:
        return self.runtime().tenants.kubeconfig(name, hours)

    # -- access: as the local operator (whoever can read the data directory owns it) --------

    def _me(self) -> Principal:
        from compute.auth.principal import local_principal

        return local_principal(self.actor.split(":", 1)[-1])

    def tokens(self) -> list[View]:
        from compute.services import tokens as service

        now = datetime.now(UTC)
        return [
            plain(service.token_view(t, now)) for t in service.visible(self.store(), self._me())
        ]

    def create_token(
        self,
        role: str,
        tenant: str | None,
        node: str | None,
        expires: str | None,
        name: str | None,
    ) -> View:
        from compute.auth.tokens import parse_lifetime
        from compute.errors import InvalidInput
        from compute.services import tokens as service

        try:
            lifetime = parse_lifetime(expires) if expires is not None else None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        rt = self.runtime()
        now = datetime.now(UTC)
        created = service.create(
            rt.store,
            self._me(),
            role=role,
            tenant=tenant,
            node=node,
            lifetime=lifetime,
            name=name or "",
            now=now,
            at=rt.clock.now(),
        )
        return plain(service.created_view(created, now))

    def revoke_token(self, id_: int) -> View:
        from compute.services import tokens as service

        rt = self.runtime()
        now = datetime.now(UTC)
        revoked = service.revoke(rt.store, self._me(), id_, now=now, at=rt.clock.now())
        return plain(service.token_view(revoked, now))

    def audit(
        self, actor: str | None, since: str | None, tenant: str | None, limit: int
    ) -> list[View]:
        from compute.services import audit as service

        after = None
        if since is not None:
            after = service.parse_since(since, self.runtime().clock.now())
        found = service.read(
            self.store(), self._me(), actor=actor, since=after, tenant=tenant, limit=limit
        )
        return [plain(service.audit_view(e)) for e in found]


def _tenant_batch(batch: TenantBatch, verb: str) -> View:
    """Tenants done and refused; with none done, the refusal."""
    error = batch.error(verb)
    if error is not None and not batch.done:
        raise error
    return plain(batch.as_dict())


def _batch(batch: Batch, verb: str, views: list[View]) -> View:
    """The API's answer to a batch: nodes done and refused; with none done, the refusal."""
    error = batch.error(verb)
    if error is not None and not batch.done:
        raise error
    return plain({"nodes": views, "refused": batch.refusals()})
