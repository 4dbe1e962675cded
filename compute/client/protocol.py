"""The operations the CLI's commands need, each answering what the API answers.

Every answer is a JSON-able view as compute/views.py (or the service's own ``*_view``)
writes it and the API returns it, so one piece of output code prints both: the same
command prints the same thing on the data directory (`local`) and through a server
(`remote`). Refusals are ComputeErrors with the same line and exit code either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from compute.client.acceptance_ops import AcceptanceOps
from compute.client.capacity_ops import CapacityOps
from compute.client.energy_ops import EnergyOps
from compute.client.floors_ops import FloorsOps
from compute.client.job_impact_ops import JobImpactOps
from compute.client.lemon_ops import LemonOps
from compute.client.power_ops import PowerOps

View = dict[str, Any]


class Client(
    PowerOps, CapacityOps, EnergyOps, FloorsOps, JobImpactOps, AcceptanceOps, LemonOps, Protocol
):
    # -- nodes ----------------------------------------------------------------------------
    def nodes(self, pool: str | None, state: str | None) -> list[View]:
        """node_view of each node (GET /nodes)."""
        ...

    def node(self, name: str) -> View:
        """node_detail_view (GET /nodes/{name})."""
        ...

    def rma_report(self, name: str) -> View:
        """rma_report_view (GET /nodes/{name}/rma-report)."""
        ...

    def drain(self, targets: Sequence[str], reason: str, now: bool) -> View:
        """{"nodes": [drained_view], "refused": [{node, code, detail}]}; with none drained,
        the refusal raised (POST /nodes/drain)."""
        ...

    def resume(self, targets: Sequence[str], force: bool, skip_burn_in: bool) -> View:
        """{"nodes": [node_view], "refused": [...]}, as drain (POST /nodes/resume)."""
        ...

    def retire(self, name: str) -> View:
        """node_view after (POST /nodes/{name}/retire)."""
        ...

    # -- the fleet ------------------------------------------------------------------------
    def events(self, node: str | None, kinds: Sequence[str], limit: int) -> list[View]:
        """event_view of each event, newest first (GET /events)."""
        ...

    def capacity(self) -> View:
        """capacity_view (GET /capacity)."""
        ...

    def sweep(self) -> View:
        """sweep_report_view of one sweep, under the lease (POST /sweep)."""
        ...

    # -- pools and the brake --------------------------------------------------------------
    def pools(self) -> list[View]:
        """pool_view of each pool (GET /pools)."""
        ...

    def set_pool_mode(self, name: str, mode: str, check: str | None) -> View:
        """pool_view after (POST /pools/{name}/observe|enable)."""
        ...

    def pool_report(self, name: str, since: str) -> View:
        """report_view over the window (GET /pools/{name}/report)."""
        ...

    def incidents(self, state: str | None, limit: int) -> list[View]:
        """incident_view of each, newest first (GET /incidents)."""
        ...

    def incident(self, id_: int) -> View:
        """incident_view (GET /incidents/{id})."""
        ...

    def release_incident(self, id_: int) -> View:
        """incident_view after (POST /incidents/{id}/release)."""
        ...

    # -- tenants --------------------------------------------------------------------------
    def tenants(self) -> list[View]:
        """tenant_view of each (GET /tenants)."""
        ...

    def tenant(self, name: str) -> View:
        """tenant_detail_view (GET /tenants/{name})."""
        ...

    def plan_tenant(self, spec_file: Path) -> View:
        """TenantPlan.as_dict of the spec in the file (POST /tenants/plan)."""
        ...

    def apply_tenant(self, spec_file: Path) -> View:
        """TenantPlan.as_dict of what was applied (PUT /tenants/{name})."""
        ...

    def plan_tenants(self, spec_files: Sequence[Path]) -> View:
        """Many specs: {"tenants": [TenantPlan.as_dict], "refused": [{tenant, code,
        detail}]}; with none planned, the refusal is raised. Every file is read and checked
        before anything is planned."""
        ...

    def apply_tenants(self, spec_files: Sequence[Path]) -> View:
        """Many specs applied, as plan_tenants answers; a refused or failed tenant holds
        back no other."""
        ...

    def suspend_tenant(self, name: str) -> View: ...

    def resume_tenant(self, name: str) -> View: ...

    def delete_tenant(
        self, name: str, force: bool, grace_seconds: int, purge_data: bool
    ) -> View: ...

    def tenant_usage(self, name: str, days: int) -> View:
        """usage_view: GPU-hours per UTC day, pool, GPU model and backend
        (GET /tenants/{name}/usage?days=N)."""
        ...

    def kubeconfig(self, name: str, hours: float) -> str:
        """A kubeconfig whose token expires after ``hours`` (POST /tenants/{name}/kubeconfig,
        answering {"tenant", "kubeconfig"})."""
        ...

    # -- access ---------------------------------------------------------------------------
    def tokens(self) -> list[View]:
        """token_view of each token the caller may see (GET /tokens)."""
        ...

    def create_token(
        self,
        role: str,
        tenant: str | None,
        node: str | None,
        expires: str | None,
        name: str | None,
    ) -> View:
        """created_view: the token's view with its plaintext, shown once (POST /tokens)."""
        ...

    def revoke_token(self, id_: int) -> View:
        """token_view after (DELETE /tokens/{id})."""
        ...

    def audit(
        self, actor: str | None, since: str | None, tenant: str | None, limit: int
    ) -> list[View]:
        """audit_view of each entry, newest first (GET /audit)."""
        ...

    def close(self) -> None: ...
