"""The TenantBackend protocol over a real Kubernetes cluster: one tenant = one namespace.

The objects are in `scheduler.kubernetes.tenant_objects` and their diff in
`scheduler.kubernetes.tenant_diff`; this module reads them, writes them (server-side
apply to create, a replace to repair, so nothing another hand added in computectl's
parts survives, and ServiceAccount token Secrets deleted; a second apply changes
nothing), ends the tenant's work on a forced delete and issues kubeconfigs
(TokenRequest) — all through the `KubeDriver` seam.

A write cut short (an API server outage) raises `Interrupted` with the steps already
made, once any was made. The steps go guards first and access last (delete: the
reverse), so a namespace its users can reach always has its quota and pool guard.

Delete keeps data: without ``purge_data`` every object goes except the namespace and
its PersistentVolumeClaims (the namespace loses its pools and RBAC, so nothing runs
there); the namespace itself is deleted only when it holds no PVC or on a purge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scheduler.errors import Conflict, SchedulerError
from scheduler.kubernetes import tenant_batch as tb
from scheduler.kubernetes import tenant_diff as td
from scheduler.kubernetes import tenant_objects as to
from scheduler.kubernetes import tenant_queues as tq
from scheduler.kubernetes.driver import KubeDriver
from scheduler.kubernetes.objects import TENANT_LABEL, is_active, labels_of, meta, pod_gpus
from scheduler.kubernetes.tenant_batch import Snapshot
from scheduler.protocol import JobInfo
from scheduler.tenants import Change, ChangeKind, Interrupted, TenantBusy, TenantSpec

# How long a forced delete waits for the pods to go after their grace period.
_POD_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.2
_FLAVOR_WAIT_SECONDS = 60.0
# A replace that lost the race with another writer is made again from a fresh read.
_CONFLICT_RETRIES = 3
_Live = dict[tuple[str, str, str], dict[str, Any] | None]


class KubernetesTenants:
    """Tenants of one cluster; ``pools`` maps computectl pool → node label selector (the
    same mapping as the cluster's `KubernetesWorkloadManager`, sharing its client)."""

    kind = "kubernetes"

    def __init__(
        self,
        client: KubeDriver,
        pools: Mapping[str, Mapping[str, str]],
        gpu_resource: str = "nvidia.com/gpu",
        sleep: Callable[[float], None] = time.sleep,
        queues: bool = False,
    ) -> None:
        self.client = client
        self.pool_values = to.pool_label_values(pools)
        self.gpu_resource = gpu_resource
        self._sleep = sleep
        # Per-pool quotas through Kueue (`scheduler.kubernetes.tenant_queues`).
        self.queues = queues

    # -- plan and apply ------------------------------------------------------------------------

    def plan(self, spec: TenantSpec) -> list[Change]:
        return [s.change for s in self._apply_steps(spec)]

    def apply(self, spec: TenantSpec) -> list[Change]:
        return self._run(self._apply_steps(spec))

    def plan_many(self, specs: Sequence[TenantSpec]) -> list[tb.Outcome]:
        """`plan` of many tenants from one read of the cluster (a list per kind)."""
        return tb.plan_many(self, specs)

    def apply_many(
        self, specs: Sequence[TenantSpec], workers: int = tb.WORKERS
    ) -> list[tb.Outcome]:
        """`apply` of many tenants: one read of the cluster, the shared objects once, then
        each tenant's steps in order, ``workers`` tenants at a time. One tenant's failure
        is its own outcome; the others go on."""
        return tb.apply_many(self, specs, workers)

    def plan_delete(self, name: str, purge_data: bool = False) -> list[Change]:
        return [s.change for s in self._delete_steps(name, purge_data)]

    def delete(
        self, name: str, force: bool = False, grace_seconds: int = 30, purge_data: bool = False
    ) -> list[Change]:
        ns = to.namespace_of(name)
        self._check_ours(name)  # refuses a foreign namespace before any pod is touched
        jobs = self.jobs(name)
        if jobs and not force:
            raise TenantBusy(name, jobs)
        done: list[Change] = []
        if self.client.get_object("Namespace", ns) is not None:
            live = self.client.get_object("ResourceQuota", to.QUOTA, ns)
            if live is not None and to.is_ours(live):
                # Quota to 0 first: the tenant's controllers cannot start new pods meanwhile.
                frozen = to.quota(TenantSpec(name, suspended=True), self.gpu_resource)
                self._replace("ResourceQuota", to.QUOTA, ns, td.replacement(live, frozen))
                done.append(
                    Change(ChangeKind.UPDATE, td.target(live), td.line(live), td.line(frozen))
                )
            try:
                for kind in to.WORKLOAD_KINDS:
                    self.client.delete_collection(kind, ns, grace_seconds)
                self._wait_no_pods(ns, grace_seconds + _POD_WAIT_SECONDS)
            except SchedulerError as exc:
                if done:
                    raise Interrupted(exc, done) from exc
                raise
        steps = self._delete_steps(name, purge_data)
        made = self._run(steps, done)
        # Kueue lets a flavor go once no queue names it (the tenant's own goes with its
        # workloads); an apply meanwhile would be refused, so wait for it here (bounded).
        deadline = time.monotonic() + _FLAVOR_WAIT_SECONDS
        for s in (s for s in steps if s.kind == "ResourceFlavor"):
            while self.client.get_object(s.kind, s.name) and time.monotonic() < deadline:
                self._sleep(_POLL_SECONDS)
        return made

    # -- reading -------------------------------------------------------------------------------

    def jobs(self, name: str) -> list[JobInfo]:
        pods = self.client.list_pods(f"metadata.namespace={to.namespace_of(name)}")
        return [
            JobInfo(
                id=f"{meta(p).get('namespace')}/{meta(p).get('name')}",
                tenant=name,
                gpus=pod_gpus(p, self.gpu_resource),
                state=str((p.get("status") or {}).get("phase", "Unknown")).lower(),
            )
            for p in pods
            if is_active(p) and not meta(p).get("deletionTimestamp")
        ]

    def managed(self) -> list[str]:
        spaces = self.client.list_namespaces(f"{to.MANAGED_BY}={to.MANAGER},{TENANT_LABEL}")
        return sorted(
            labels_of(n)[TENANT_LABEL]
            for n in spaces
            # A terminating namespace is on its way out: the tenant is gone from here.
            if not meta(n).get("deletionTimestamp")
            and meta(n).get("name") == to.namespace_of(labels_of(n)[TENANT_LABEL])
        )

    def kubeconfig(
        self,
        name: str,
        server: str | None = None,
        ca_data: str | None = None,
        *,
        expiration_seconds: int = 3600,
    ) -> str:
        """A kubeconfig for the tenant's ServiceAccount: a bound token that expires, the
        tenant's namespace as default. ``server``/``ca_data`` default to this client's."""
        ns = to.namespace_of(name)
        self._check_ours(name)
        if self.client.get_object("ServiceAccount", to.SERVICE_ACCOUNT, ns) is None:
            raise SchedulerError(f"tenant {name} has no ServiceAccount here; apply it first")
        if server is None or ca_data is None:
            own_server, own_ca = self.client.endpoint()
            server = server or own_server
            ca_data = own_ca if ca_data is None else ca_data
        token = self.client.service_account_token(ns, to.SERVICE_ACCOUNT, expiration_seconds)
        cluster: dict[str, Any] = {"server": server}
        if ca_data:
            cluster["certificate-authority-data"] = ca_data
        ctx = f"{name}@computectl"
        # JSON is YAML: every kubeconfig reader takes it.
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "computectl", "cluster": cluster}],
                "users": [{"name": f"tenant-{name}", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": ctx,
                        "context": {
                            "cluster": "computectl",
                            "user": f"tenant-{name}",
                            "namespace": ns,
                        },
                    }
                ],
                "current-context": ctx,
            },
            indent=2,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _read(self, objects: list[dict[str, Any]]) -> _Live:
        return {
            (k, ns, n): self.client.get_object(k, n, ns)
            for k, ns, n in (td.key(o) for o in objects)
        }

    def _check_ours(self, name: str) -> None:
        ns = self.client.get_object("Namespace", to.namespace_of(name))
        if ns is not None and not to.is_ours(ns):
            raise Conflict(_foreign([td.target(ns)]))

    def _apply_steps(self, spec: TenantSpec, seen: Snapshot | None = None) -> list[td.Step]:
        """The steps to ``spec``, reading each object (or, for many tenants at once, looking
        it up in ``seen``: `scheduler.kubernetes.tenant_batch`)."""
        want = (seen.wanted.get(spec.name) if seen is not None else None) or to.desired(
            spec, self.pool_values, self.gpu_resource, self.queues
        )
        ns = to.namespace_of(spec.name)
        ns_obj = (
            self.client.get_object("Namespace", ns)
            if seen is None
            else seen.objects.get(("Namespace", "", ns))
        )
        if ns_obj is not None and not to.is_ours(ns_obj):
            raise Conflict(_foreign([td.target(ns_obj)]))
        if ns_obj is not None and meta(ns_obj).get("deletionTimestamp"):
            raise SchedulerError(f"namespace {ns} is still being deleted; apply again soon")
        # Inside a namespace that does not exist yet nothing else can: skip those reads.
        wanted = [o for o in want if ns_obj is not None or not meta(o).get("namespace")]
        live = (
            self._read(wanted)
            if seen is None
            else {td.key(o): seen.objects.get(td.key(o)) for o in wanted}
        )
        bad = td.foreign(live)
        if bad:
            raise Conflict(_foreign(bad))
        going = [td.target(o) for o in live.values() if o and meta(o).get("deletionTimestamp")]
        if going:
            # A flavor its last tenant left: a queue naming it now would lose it.
            raise SchedulerError(f"{', '.join(going)} still being deleted; apply again soon")
        steps = td.apply_steps(live, want, None if seen is None else seen.memo)
        if ns_obj is not None:
            # Last: the objects policy (made first) already stops new ones meanwhile.
            steps += td.token_secret_steps(
                self.client.list_objects("Secret", ns)
                if seen is None
                else seen.token_secrets.get(ns, [])
            )
        return steps

    def _delete_steps(self, name: str, purge_data: bool) -> list[td.Step]:
        ns = to.namespace_of(name)
        self._check_ours(name)
        # The shared guard stays: only the tenant's own objects are read.
        want = to.desired(TenantSpec(name), self.pool_values, self.gpu_resource, self.queues)
        live = self._read(
            [o for o in want if o["kind"] == "Namespace" or TENANT_LABEL in labels_of(o)]
        )
        live = {k: v for k, v in live.items() if v is None or to.is_ours(v)}
        pvcs = (
            [
                str(meta(p).get("name"))
                for p in self.client.list_objects("PersistentVolumeClaim", ns)
            ]
            if live.get(("Namespace", "", ns)) is not None
            else []
        )
        return td.delete_steps(name, live, pvcs, purge_data) + self._flavors_left(name)

    def _flavors_left(self, name: str) -> list[td.Step]:
        """computectl's ResourceFlavors that no ClusterQueue but the tenant's names: with
        its last tenant gone, a pool's flavor goes too. Kueue's finalizer keeps a flavor
        that a queue still names (one made meanwhile) until it is free; an apply that names
        it again makes it again."""
        if not self.queues:
            return []
        own = tq.cluster_queue_name(name)
        used = {
            str(f.get("name"))
            for cq in self.client.list_objects("ClusterQueue")
            if meta(cq).get("name") != own
            for g in (cq.get("spec") or {}).get("resourceGroups") or []
            for f in g.get("flavors") or []
        }
        ours = f"{to.MANAGED_BY}={to.MANAGER}"
        left = [
            f | {"kind": "ResourceFlavor"}  # a list's items carry no kind
            for f in self.client.list_objects("ResourceFlavor", label_selector=ours)
            if to.is_ours(f) and str(meta(f).get("name")) not in used
        ]
        return [
            td.Step(
                Change(ChangeKind.DELETE, td.target(f), td.line(f), ""),
                "ResourceFlavor",
                str(meta(f).get("name")),
            )
            for f in left
        ]

    def _run(self, steps: list[td.Step], done: list[Change] | None = None) -> list[Change]:
        """Run the steps in order after ``done`` (changes made already); the first failure
        stops (the next apply re-reads), as `Interrupted` once anything was changed."""
        made = list(done or [])
        for s in steps:
            try:
                if s.obj is None:
                    self.client.delete_object(s.kind, s.name, s.namespace)
                elif s.replace:
                    self._replace(s.kind, s.name, s.namespace, s.obj)
                else:
                    self.client.apply_object(s.obj)
            except SchedulerError as exc:
                if made:
                    raise Interrupted(exc, made) from exc
                raise
            made.append(s.change)
        return made

    def _replace(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> None:
        """Replace as read; when another writer got in between, read again and retry."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self.client.replace_object(body)
                return
            except Conflict:
                live = self.client.get_object(kind, name, namespace)
                if attempt == _CONFLICT_RETRIES - 1 or live is None or not to.is_ours(live):
                    raise
                body = td.replacement(live, body)

    def _wait_no_pods(self, ns: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = self.client.list_pods(f"metadata.namespace={ns}")
            if not left:
                return
            if time.monotonic() >= deadline:
                raise SchedulerError(
                    f"{len(left)} pod(s) still in namespace {ns} {seconds:g} s after deletion"
                )
            self._sleep(_POLL_SECONDS)


def _foreign(targets: list[str]) -> str:
    return (
        f"Kubernetes already has {'; '.join(targets)}, made outside computectl (no "
        f"{to.MANAGED_BY}={to.MANAGER} label); computectl leaves it alone — choose another "
        "tenant name or remove it in the cluster"
    )
