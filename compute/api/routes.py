"""Routers: each one parses, calls a service, and shapes the answer. No logic of their own."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from compute.api.deps import ActorName, Rt, on_loop, one_hop, read_cache, report_hop
from compute.api.problems import PROBLEM_RESPONSES
from compute.api.read_cache import OVERVIEW_SECONDS, OVERVIEW_SHARE
from compute.api.schemas import (
    DrainManyRequest,
    DrainRequest,
    KubeconfigRequest,
    PoolModeRequest,
    ResumeManyRequest,
    ResumeRequest,
)
from compute.errors import InvalidInput
from compute.services import fleet, incidents, pools
from compute.services.batch import Batch
from compute.services.ingest import parse_report
from compute.services.leadership import Leadership, under_lease
from compute.services.rma import rma_report
from compute.tenants.spec import TenantModel, tenant_from_model
from compute.validation import NodeName, PoolName, ShortText, TenantName
from compute.views import (
    capacity_view,
    drained_view,
    event_view,
    ingested_view,
    node_detail_view,
    node_view,
    overview_view,
    rack_view,
    rma_report_view,
    sweep_report_view,
    tenant_detail_view,
    tenant_view,
)
from health.policy import Lifecycle

api = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Actor = ActorName
Node = Annotated[NodeName, Path(description="Node name, as its workload manager knows it.")]
Tenant = Annotated[TenantName, Path(description="Tenant name.")]


@api.get("/nodes", summary="List nodes")
@one_hop  # as many nodes as a pool or a state holds: not on the event loop
def list_nodes(
    rt: Rt, pool: PoolName | None = None, state: Lifecycle | None = None
) -> dict[str, Any]:
    from compute.services import lemons

    found = rt.nodes.list(pool=pool, state=state.value if state is not None else None)
    marks = lemons.marks(rt.store)
    return {"nodes": [node_view(n, marks.get(n.name)) for n in found]}


@api.get("/nodes/{name}", summary="One node: state, GPUs, latest results, events")
@on_loop  # a few rows (its GPUs, a result per check, 20 events)
def get_node(rt: Rt, name: Node) -> dict[str, Any]:
    from compute.services import lemons

    return node_detail_view(rt.nodes.detail(name), lemons.mark_of(rt.store, name))


@api.get("/nodes/{name}/rma-report", summary="Evidence for an RMA ticket: serials, UUIDs, XIDs")
def get_rma_report(rt: Rt, name: Node) -> dict[str, Any]:
    return rma_report_view(rma_report(rt.store, rt.nodes.get(name)))


@api.post(
    "/nodes/{name}/health",
    status_code=202,
    summary="Report check results from a node (what `computectl node check` posts)",
)
@report_hop
def post_health(
    rt: Rt,
    name: Node,
    payload: Annotated[Any, Body(description='A list of check results, or {"results": [...]}.')],
) -> dict[str, Any]:
    retention = timedelta(days=rt.settings.sweep.results_retention_days)
    results = parse_report(name, payload, now=rt.clock.now(), max_age=retention)
    return ingested_view(rt.ingest.ingest(name, results), len(results))


def _batch(batch: Batch, verb: str, views: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes done and nodes refused; with none done, the refusal as a problem document."""
    error = batch.error(verb)
    if error is not None and not batch.done:
        raise error
    return {"nodes": views, "refused": batch.refusals()}


@api.post("/nodes/drain", summary="Drain many nodes (one backend call per backend)")
def drain_nodes(rt: Rt, actor: Actor, body: DrainManyRequest) -> dict[str, Any]:
    batch = rt.nodes.drain_many(body.nodes, body.reason, actor=actor, now_mode=body.now)
    views = [drained_view(n, n.health.drain_blocked) for n in batch.done]
    return _batch(batch, "drained", views)


@api.post("/nodes/resume", summary="Resume many nodes (one backend call per backend)")
def resume_nodes(rt: Rt, actor: Actor, body: ResumeManyRequest) -> dict[str, Any]:
    batch = rt.nodes.resume_many(
        body.nodes, actor=actor, force=body.force, skip_burn_in=body.skip_burn_in
    )
    return _batch(batch, "resumed", [node_view(n) for n in batch.done])


@api.post("/nodes/{name}/drain", summary="Drain a node (owned reason)")
def drain_node(rt: Rt, actor: Actor, name: Node, body: DrainRequest) -> dict[str, Any]:
    node = rt.nodes.drain(name, body.reason, actor=actor, now_mode=body.now)
    return drained_view(node, rt.nodes.left_running(name))


@api.post("/nodes/{name}/resume", summary="Resume a node (through burn-in unless skipped)")
def resume_node(
    rt: Rt, actor: Actor, name: Node, body: ResumeRequest | None = None
) -> dict[str, Any]:
    body = body or ResumeRequest()
    return node_view(
        rt.nodes.resume(name, actor=actor, force=body.force, skip_burn_in=body.skip_burn_in)
    )


@api.post("/nodes/{name}/retire", summary="Retire a node for good (drained or in repair)")
def retire_node(rt: Rt, actor: Actor, name: Node) -> dict[str, Any]:
    return node_view(rt.nodes.retire(name, actor=actor))


@api.get("/events", summary="Drain, resume and lifecycle events, newest first")
@one_hop  # up to 1,000 events: not on the event loop
def list_events(
    rt: Rt,
    node: NodeName | None = None,
    kind: Annotated[list[ShortText] | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"events": [event_view(e) for e in fleet.events(rt.store, node, kind, limit)]}


@api.get("/capacity", summary="GPUs by state, pool and model; and by tenant")
def get_capacity(rt: Rt) -> dict[str, Any]:
    return capacity_view(fleet.fleet_capacity(rt.store))


@api.get("/racks", summary="Racks with their latest power draw and budget")
def get_racks(rt: Rt) -> dict[str, Any]:
    return {"racks": [rack_view(r) for r in fleet.racks(rt.store)]}


@api.post("/sweep", summary="Run one sweep now")
def run_sweep(rt: Rt) -> dict[str, Any]:
    if isinstance(rt.leadership, Leadership):
        # Only under the lease, as `computectl sweep` (409 lease_held where another acts).
        return sweep_report_view(under_lease(rt.leadership, rt.sweep))
    return sweep_report_view(rt.sweep())


@api.get(
    "/overview",
    summary="Everything the fleet overview page shows (as of a few seconds ago at most)",
    response_model=dict[str, Any],
)
async def get_overview(request: Request, rt: Rt) -> Response:
    # Built at most once per OVERVIEW_SECONDS in a process (compute/api/read_cache.py).
    leading = rt.may_act()
    cache = read_cache(request, "overview", OVERVIEW_SECONDS, OVERVIEW_SHARE)
    body = cache.peek(leading)
    if body is None:

        def build() -> dict[str, Any]:
            return {**overview_view(fleet.overview(rt.store, rt.clock.now())), "leading": leading}

        body = await run_in_threadpool(cache.get, leading, build)
    return Response(body, media_type="application/json")


# -- tenants ------------------------------------------------------------------------------------


@api.get("/tenants", summary="Tenants with their state and the GPUs they hold")
def list_tenants(rt: Rt) -> dict[str, Any]:
    return {"tenants": [tenant_view(t) for t in fleet.tenants(rt.store)]}


@api.get("/tenants/{name}", summary="One tenant, with its jobs")
def get_tenant(rt: Rt, name: Tenant) -> dict[str, Any]:
    return tenant_detail_view(fleet.tenant_detail(rt.store, rt.tenants.jobs, name))


@api.post("/tenants/plan", summary="What applying this tenant spec would change")
def plan_tenant(rt: Rt, spec: TenantModel) -> dict[str, Any]:
    return rt.tenants.plan(tenant_from_model(spec, rt.settings.effective_pools)).as_dict()


@api.put("/tenants/{name}", summary="Apply a tenant spec (idempotent)")
def apply_tenant(rt: Rt, actor: Actor, name: Tenant, spec: TenantModel) -> dict[str, Any]:
    parsed = tenant_from_model(spec, rt.settings.effective_pools)
    if parsed.name != name:
        raise InvalidInput(f"the spec names tenant {parsed.name!r}, the URL {name!r}")
    return rt.tenants.apply(parsed, actor=actor).as_dict()


@api.post("/tenants/{name}/suspend", summary="No new work; running work continues")
def suspend_tenant(rt: Rt, actor: Actor, name: Tenant) -> dict[str, Any]:
    return rt.tenants.suspend(name, actor=actor).as_dict()


@api.post("/tenants/{name}/resume", summary="Lift a suspension")
def resume_tenant(rt: Rt, actor: Actor, name: Tenant) -> dict[str, Any]:
    return rt.tenants.resume(name, actor=actor).as_dict()


@api.delete("/tenants/{name}", summary="Delete a tenant (refused while it has jobs unless force)")
def delete_tenant(
    rt: Rt,
    actor: Actor,
    name: Tenant,
    force: bool = False,
    grace_seconds: Annotated[int, Query(ge=0, le=3600)] = 30,
    purge_data: bool = False,
) -> dict[str, Any]:
    plan = rt.tenants.delete(
        name, actor=actor, force=force, grace_seconds=grace_seconds, purge_data=purge_data
    )
    return plan.as_dict()


@api.post("/tenants/{name}/kubeconfig", summary="A kubeconfig for the tenant's namespace")
def tenant_kubeconfig(
    rt: Rt, name: Tenant, body: KubeconfigRequest | None = None
) -> dict[str, Any]:
    # POST: it mints a credential (a token bound to the tenant's namespace).
    hours = (body or KubeconfigRequest()).hours
    return {"tenant": name, "kubeconfig": rt.tenants.kubeconfig(name, hours)}


# -- pools' modes and the brake -----------------------------------------------------------------

PoolPath = Annotated[PoolName, Path(description="Pool name.")]
IncidentId = Annotated[int, Path(ge=1, le=2**62, description="Incident id.")]


@api.get("/pools", summary="Pools with their mode: observe or enforce (per check too)")
def list_pools(rt: Rt) -> dict[str, Any]:
    return {"pools": [pools.pool_view(p) for p in rt.store.pools()]}


@api.get("/pools/{name}/report", summary="What observe mode kept from happening over a window")
def pool_report(
    rt: Rt,
    name: PoolPath,
    since: Annotated[str, Query(max_length=16, description="Window: 90s, 30m, 24h, 7d.")] = "24h",
) -> dict[str, Any]:
    window = pools.parse_window(since)
    return pools.report_view(pools.report(rt.store, rt.clock, name, window))


@api.post("/pools/{name}/observe", summary="Record what would be done, and do nothing")
def observe_pool(
    rt: Rt, actor: Actor, name: PoolPath, body: PoolModeRequest | None = None
) -> dict[str, Any]:
    check = body.check if body is not None else None
    return pools.pool_view(pools.set_mode(rt.store, rt.clock, name, "observe", check, actor))


@api.post("/pools/{name}/enable", summary="Let computectl act (on the pool, or on one check)")
def enable_pool(
    rt: Rt, actor: Actor, name: PoolPath, body: PoolModeRequest | None = None
) -> dict[str, Any]:
    check = body.check if body is not None else None
    return pools.pool_view(pools.set_mode(rt.store, rt.clock, name, "enforce", check, actor))


@api.get("/incidents", summary="Incidents of the brake for shared causes, newest first")
def list_incidents(
    rt: Rt,
    state: Annotated[str | None, Query(pattern="^(open|released)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    found = incidents.list_incidents(rt.store, state, limit)
    return {"incidents": [incidents.incident_view(i) for i in found]}


@api.get("/incidents/{id}", summary="One incident with its evidence")
def get_incident(rt: Rt, id: IncidentId) -> dict[str, Any]:
    return incidents.incident_view(incidents.get_incident(rt.store, id))


@api.post("/incidents/{id}/release", summary="Release the brake: automated drains proceed")
def release_incident(rt: Rt, actor: Actor, id: IncidentId) -> dict[str, Any]:
    return incidents.incident_view(incidents.release(rt.store, rt.clock, id, actor))
