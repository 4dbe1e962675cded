"""Kubernetes tenants against a real API server (testenv/kubernetes), through the Runtime.

Nothing is mocked: quota, LimitRanger, PodSecurity, the ValidatingAdmissionPolicy and
RBAC are the API server's own; kwok plays the GPU nodes (pods become Running at once).
The tests create pods with the admin client (as a tenant's tooling would) and with the
kubeconfig computectl issues.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from compute.errors import PartialError, RefusedError
from compute.runtime import Runtime
from compute.tenants.spec import parse_tenant
from scheduler.errors import SchedulerError, Unreachable
from scheduler.kubernetes import KubeClient, KubernetesTenants, KubernetesWorkloadManager
from scheduler.kubernetes.tenant_objects import GUARD, OBJECTS_GUARD, OUR_LABEL_PREFIXES, QUOTA
from scheduler.tenants import ChangeKind, Interrupted, TenantSpec
from tests.integration.conftest import KubeCluster, runtime_over
from tests.integration.kube_backend_support import exited, kwok_takes_over

pytestmark = pytest.mark.integration

OPERATOR = "operator:test"


@pytest.fixture
def rt(kube: KubeCluster, tmp_path: Path) -> Iterator[Runtime]:
    runtime = runtime_over(kube.computectl_toml, tmp_path)
    yield runtime
    runtime.close()


@pytest.fixture
def names(api: Any) -> Iterator[Callable[[], str]]:
    """Fresh tenant names; their namespaces are removed afterwards (pods first, as the
    namespace controller would wait out their grace period on kwok)."""
    made: list[str] = []

    def new() -> str:
        made.append(f"kt{uuid.uuid4().hex[:6]}")
        return made[-1]

    yield new
    for name in made:
        ns = f"tenant-{name}"
        try:
            api.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
            api.delete_namespace(ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


def spec(rt: Runtime, name: str, **quotas: int) -> TenantSpec:
    return parse_tenant(
        {
            "name": name,
            "users": ["alice"],
            "quotas": [{"pool": p, "gpus": g} for p, g in quotas.items()],
        },
        rt.settings.effective_pools,
    )


def pod(api: Any, ns: str, name: str, gpus: int, pool: str | None = "training") -> Any:
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {},
                }
            ]
        },
    }
    if pool is not None:
        body["spec"]["nodeSelector"] = {"computectl.io/pool": pool}
    return api.create_namespaced_pod(ns, body)


def refused(api: Any, ns: str, name: str, gpus: int, pool: str | None = "training") -> str:
    with pytest.raises(ApiException) as err:
        pod(api, ns, name, gpus, pool)
    assert err.value.status == 403
    return str(err.value.body)


def refused_once_active(api: Any, ns: str, name: str, gpus: int, pool: str | None) -> str:
    """The first refusal in a new namespace: the API server matches admission policies against
    its namespace cache, which sees the new namespace's labels a moment after apply. A pod let
    in during that moment is deleted and the request repeated (for up to 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            pod(api, ns, name, gpus, pool)
        except ApiException as exc:
            if exc.status != 403:
                raise
            return str(exc.body)
        api.delete_namespaced_pod(name, ns, grace_period_seconds=0)
        if time.monotonic() > deadline:
            pytest.fail(f"{ns}: the pool guard never refused pod {name}")
        time.sleep(0.2)


def running(kube: KubeCluster, api: Any, ns: str, name: str) -> Any:
    def up() -> bool:
        return bool(api.read_namespaced_pod(name, ns).status.phase == "Running")

    kube.wait(f"pod {ns}/{name} to run", up)
    return api.read_namespaced_pod(name, ns)


def test_quota_and_pool_guard_are_enforced_by_admission_and_apply_is_idempotent(
    rt: Runtime, kube: KubeCluster, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    ns = f"tenant-{name}"
    want = spec(rt, name, training=16)
    planned = rt.tenants.plan(want)
    assert {c.target for _, c in planned.changes} >= {
        f"namespace {ns}",
        f"resourcequota {ns}/computectl-gpu",
        f"rolebinding {ns}/computectl-tenant",
        f"networkpolicy {ns}/computectl-default-deny",
    }
    done = rt.tenants.apply(want, actor=OPERATOR)
    assert [c.target for _, c in done.changes] == [c.target for _, c in planned.changes]
    quota = {(b, c.target): c.after for b, c in done.changes}
    assert quota[("kubernetes", f"resourcequota {ns}/computectl-gpu")] == (
        "requests.nvidia.com/gpu=16"
    )
    labels = api.read_namespace(ns).metadata.labels
    assert labels["computectl.io/managed-by"] == "computectl"
    assert labels["pool.computectl.io/training"] == "allowed"

    # The guard: GPU pods must pin a pool the tenant bought (before the quota fills up).
    assert "must set nodeSelector computectl.io/pool" in refused_once_active(
        api, ns, "inf", 8, "inference"
    )
    assert "must set nodeSelector computectl.io/pool" in refused(api, ns, "nopool", 8, None)
    # Quota admission: 24 > 16.
    assert "exceeded quota" in refused(api, ns, "big", 24)
    pod(api, ns, "a", 8)
    pod(api, ns, "b", 8)
    for p in ("a", "b"):
        assert running(kube, api, ns, p).spec.node_name in {f"kwok-gpu-00{i}" for i in range(1, 7)}
    assert "exceeded quota" in refused(api, ns, "c", 1)
    # A pod without GPUs is not the guard's business, and gets default requests.
    cpu = pod(api, ns, "cpu", 0, None)
    assert cpu.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "256Mi"}
    jobs = rt.tenants.jobs(name)
    assert sorted((j.id, j.gpus) for j in jobs) == [
        (f"{ns}/a", 8),
        (f"{ns}/b", 8),
        (f"{ns}/cpu", 0),
    ]

    assert rt.tenants.plan(want).empty
    assert rt.tenants.apply(want, actor=OPERATOR).empty
    # A change is one update with a one-line before/after.
    grown = spec(rt, name, training=24)
    [(backend, change)] = rt.tenants.plan(grown).changes
    assert (backend, change.kind, change.before, change.after) == (
        "kubernetes",
        ChangeKind.UPDATE,
        "requests.nvidia.com/gpu=16",
        "requests.nvidia.com/gpu=24",
    )
    with_bob = parse_tenant(
        {"name": name, "users": ["alice", "bob"], "quotas": [{"pool": "training", "gpus": 16}]},
        rt.settings.effective_pools,
    )
    [(_, change)] = rt.tenants.plan(with_bob).changes
    assert (change.target, change.after) == (
        f"rolebinding {ns}/computectl-tenant",
        "subjects=ServiceAccount/tenant,User/alice,User/bob",
    )
    assert name in rt.backends.tenants_by_pool["training"].managed()


def test_a_namespace_made_outside_computectl_is_refused(
    rt: Runtime, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    api.create_namespace({"metadata": {"name": f"tenant-{name}"}})
    with pytest.raises(RefusedError, match="made outside computectl"):
        rt.tenants.apply(spec(rt, name, training=8), actor=OPERATOR)
    assert rt.store.tenant(name) is None
    assert api.read_namespace(f"tenant-{name}").metadata.labels.get("computectl.io/tenant") is None


def test_the_issued_kubeconfig_works_in_its_namespace_only(
    rt: Runtime, kube: KubeCluster, api: Any, names: Callable[[], str], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from compute.cli import main as cli_main

    mine, other = names(), names()
    rt.tenants.apply(spec(rt, mine, training=8), actor=OPERATOR)
    rt.tenants.apply(spec(rt, other, inference=8), actor=OPERATOR)
    path = tmp_path / "kubeconfig"
    path.write_text(rt.tenants.kubeconfig(mine, hours=1))
    k8s_config: Any = config  # the package has no type hints
    tenant_api = client.CoreV1Api(
        k8s_config.new_client_from_config(config_file=str(path), persist_config=False)
    )
    try:
        pod(tenant_api, f"tenant-{mine}", "mine", 4)
        listed = tenant_api.list_namespaced_pod(f"tenant-{mine}").items
        assert [p.metadata.name for p in listed if p.metadata] == ["mine"]
        with pytest.raises(ApiException) as err:
            tenant_api.list_namespaced_pod(f"tenant-{other}")
        assert err.value.status == 403
        with pytest.raises(ApiException) as err:
            tenant_api.list_node()
        assert err.value.status == 403
    finally:
        tenant_api.api_client.close()
    assert rt.tenants.plan(spec(rt, mine, training=8)).empty  # the tenant's pod changes nothing

    # The CLI writes the same, 0600.
    out = tmp_path / "cli.kubeconfig"
    result = CliRunner().invoke(
        cli_main.cli,
        ["--config", str(kube.computectl_toml), "--data-dir", str(rt.settings.data_dir),
         "tenants", "kubeconfig", mine, "--output-file", str(out), "--hours", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert f'"namespace": "tenant-{mine}"' in out.read_text()


def test_suspend_stops_new_pods_and_keeps_running_ones(
    rt: Runtime, kube: KubeCluster, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    ns = f"tenant-{name}"
    rt.tenants.apply(spec(rt, name, training=16), actor=OPERATOR)
    pod(api, ns, "before", 8)
    running(kube, api, ns, "before")
    [(_, change)] = rt.tenants.suspend(name, actor=OPERATOR).changes
    assert change.after == "pods=0 requests.nvidia.com/gpu=0"
    assert "exceeded quota" in refused_once_quota_seen(api, ns, "during", 4)
    assert api.read_namespaced_pod("before", ns).status.phase == "Running"
    rt.tenants.resume(name, actor=OPERATOR)
    admitted_once_quota_seen(api, ns, "after", 4)
    running(kube, api, ns, "after")


def refused_once_quota_seen(api: Any, ns: str, name: str, gpus: int) -> str:
    """Quota admission reads ResourceQuotas from the API server's cache: for a moment after
    a quota is lowered it may still admit a pod under the old limits (taken away again
    here, as the operator would); then every new pod is refused."""
    deadline = time.monotonic() + 30
    while True:
        try:
            pod(api, ns, name, gpus)
        except ApiException as exc:
            if exc.status != 403:
                raise
            return str(exc.body)
        api.delete_namespaced_pod(name, ns, grace_period_seconds=0)
        assert time.monotonic() < deadline, "the lowered quota was never seen"
        while time.monotonic() < deadline and any(
            p.metadata.name == name for p in api.list_namespaced_pod(ns).items
        ):
            time.sleep(0.1)


def admitted_once_quota_seen(api: Any, ns: str, name: str, gpus: int) -> None:
    """Quota admission reads ResourceQuotas from the API server's cache: for a moment after
    a quota is raised it may still refuse with the old limits."""
    deadline = time.monotonic() + 30
    while True:
        try:
            pod(api, ns, name, gpus)
            return
        except ApiException as exc:
            if exc.status != 403 or "exceeded quota" not in str(exc.body):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_delete_refuses_running_pods_force_ends_them_and_data_needs_a_purge(
    rt: Runtime, kube: KubeCluster, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    ns = f"tenant-{name}"
    rt.tenants.apply(spec(rt, name, training=8), actor=OPERATOR)
    pod(api, ns, "work", 8)
    running(kube, api, ns, "work")
    api.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    with pytest.raises(RefusedError, match="1 running"):
        rt.tenants.delete(name, actor=OPERATOR)
    assert api.read_namespaced_pod("work", ns).status.phase == "Running"

    done = rt.tenants.delete(name, actor=OPERATOR, force=True, grace_seconds=0)
    assert not api.list_namespaced_pod(ns).items
    steps = {(c.kind, c.target) for _, c in done.changes}
    assert (ChangeKind.DELETE, f"resourcequota {ns}/computectl-gpu") in steps
    assert (ChangeKind.UPDATE, f"namespace {ns}") in steps  # kept, without pools
    assert api.read_namespaced_persistent_volume_claim("data", ns).metadata.name == "data"
    labels = api.read_namespace(ns).metadata.labels
    assert not any(k.startswith("pool.computectl.io/") for k in labels)
    assert api.list_namespaced_resource_quota(ns).items == []
    assert rt.store.tenant(name) is None

    purged = rt.tenants.delete(name, actor=OPERATOR, purge_data=True)
    assert {(c.kind, c.target) for _, c in purged.changes} == {
        (ChangeKind.DELETE, f"persistentvolumeclaim {ns}/data"),
        (ChangeKind.DELETE, f"namespace {ns}"),
    }

    def gone() -> bool:
        try:
            api.read_namespace(ns)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    kube.wait("the namespace and its PVC to go", gone, 60)
    assert name not in rt.backends.tenants_by_pool["training"].managed()
    actions = [e.action for e in rt.store.audit(target=name)]
    assert actions[:1] == ["tenant.delete"] or "tenant.delete" in actions
    assert {"tenant.apply", "tenant.cancel_jobs", "tenant.delete"} <= set(actions)
    entries = [e for e in rt.store.audit(target=name) if e.action == "tenant.delete"]
    assert any(e.detail.get("purge_data") for e in entries)
    assert any(
        c["target"] == f"persistentvolumeclaim {ns}/data"
        for e in entries
        for c in e.detail["changes"]
    )


MERGE = "application/merge-patch+json"


def users_of(ns: str) -> list[tuple[str, list[str]]]:
    """The tenant's identities as the API server sees them: a user, and its ServiceAccount."""
    return [
        ("alice", ["system:authenticated"]),
        (
            f"system:serviceaccount:{ns}:tenant",
            ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        ),
    ]


def allowed(
    api: Any, user: str, groups: list[str], ns: str, verb: str, group: str, resource: str
) -> bool:
    """The API server's own authorizer (a SubjectAccessReview), asked as the cluster admin."""
    attributes = {"verb": verb, "group": group, "resource": resource}
    if resource == "namespaces":
        attributes["name"] = ns
    elif not resource.startswith("validatingadmission"):
        attributes["namespace"] = ns
    authz: Any = client.AuthorizationV1Api(api.api_client)
    out = authz.create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
        }
    )
    return bool(out.status.allowed)


def guarded(api: Any, ns: str, gpus: int) -> bool:
    """The namespace has its quota, its defaults and the guards that match it."""
    adm = client.AdmissionregistrationV1Api(api.api_client)
    try:
        hard = api.read_namespaced_resource_quota(QUOTA, ns).spec.hard
        api.read_namespaced_limit_range("computectl-defaults", ns)
        labels = api.read_namespace(ns).metadata.labels
        for guard in (GUARD, OBJECTS_GUARD):
            adm.read_validating_admission_policy(guard)
            adm.read_validating_admission_policy_binding(guard)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return bool(
        hard == {"requests.nvidia.com/gpu": str(gpus)}
        and labels.get("computectl.io/managed-by") == "computectl"
        and "computectl.io/tenant" in labels
    )


def test_foreign_additions_in_computectls_parts_are_drift_and_one_apply_takes_them_back(
    rt: Runtime, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    ns = f"tenant-{name}"
    want = spec(rt, name, training=8)
    rt.tenants.apply(want, actor=OPERATOR)
    # Another hand (kubectl, another field manager) adds to what computectl owns.
    api.patch_namespace(
        ns,
        {"metadata": {"labels": {"pool.computectl.io/inference": "allowed", "team": "research"}}},
        _content_type=MERGE,
    )
    api.patch_namespaced_resource_quota(
        QUOTA,
        ns,
        {"spec": {"hard": {"requests.nvidia.com/gpu": "64", "requests.cpu": "1k"}}},
        _content_type=MERGE,
    )
    adm = client.AdmissionregistrationV1Api(api.api_client)
    adm.patch_validating_admission_policy_binding(
        GUARD,
        {"spec": {"matchResources": {"objectSelector": {"matchLabels": {"checked": "yes"}}}}},
        _content_type=MERGE,
    )

    planned = {c.target: c for _, c in rt.tenants.plan(want).changes}
    assert set(planned) == {
        f"validatingadmissionpolicybinding {GUARD}",
        f"namespace {ns}",
        f"resourcequota {ns}/{QUOTA}",
    }
    assert (planned[f"namespace {ns}"].before, planned[f"namespace {ns}"].after) == (
        f"pools=inference,training tenant={name}",
        f"pools=training tenant={name}",
    )
    assert (planned[f"resourcequota {ns}/{QUOTA}"].before,) == (
        "requests.cpu=1k requests.nvidia.com/gpu=64",
    )
    done = rt.tenants.apply(want, actor=OPERATOR)
    assert {c.target for _, c in done.changes} == set(planned)

    labels = api.read_namespace(ns).metadata.labels
    assert {k: v for k, v in labels.items() if k.startswith(OUR_LABEL_PREFIXES)} == {
        "computectl.io/managed-by": "computectl",
        "computectl.io/tenant": name,
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "baseline",
        "pool.computectl.io/training": "allowed",
    }
    assert labels["team"] == "research"  # not computectl's to take
    assert api.read_namespaced_resource_quota(QUOTA, ns).spec.hard == {
        "requests.nvidia.com/gpu": "8"
    }
    selector: Any = adm.read_validating_admission_policy_binding(GUARD).spec.match_resources
    assert not (selector.object_selector and selector.object_selector.match_labels)
    assert rt.tenants.plan(want).empty
    # And the guard holds again: no GPU pod in the pool the tenant did not buy.
    assert "must set nodeSelector computectl.io/pool" in refused_once_active(
        api, ns, "sneak", 1, "inference"
    )


def test_the_tenants_users_cannot_touch_what_the_guard_trusts(
    rt: Runtime, api: Any, names: Callable[[], str]
) -> None:
    name = names()
    ns = f"tenant-{name}"
    rt.tenants.apply(spec(rt, name, training=8), actor=OPERATOR)
    rbac, adm = "rbac.authorization.k8s.io", "admissionregistration.k8s.io"
    for user, groups in users_of(ns):
        assert allowed(api, user, groups, ns, "create", "", "pods")
        for verb, group, resource in [
            ("patch", "", "namespaces"),
            ("update", "", "namespaces"),
            ("patch", "", "resourcequotas"),
            ("delete", "", "resourcequotas"),
            ("create", "", "resourcequotas"),
            ("patch", "", "limitranges"),
            ("delete", "networking.k8s.io", "networkpolicies"),
            ("patch", rbac, "roles"),
            ("create", rbac, "rolebindings"),
            ("create", "", "serviceaccounts"),
            ("patch", adm, "validatingadmissionpolicies"),
            ("delete", adm, "validatingadmissionpolicybindings"),
        ]:
            assert not allowed(api, user, groups, ns, verb, group, resource), (user, verb, resource)


class CutShort(KubeClient):
    """The real client, whose API server stops answering before write number ``at``."""

    def __init__(self, kubeconfig: Path, at: int) -> None:
        super().__init__(kubeconfig)
        self.at = at
        self.writes = 0

    def _write(self) -> None:
        if self.writes == self.at:
            raise Unreachable("injected: the API server stopped answering")
        self.writes += 1

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._write()
        return super().apply_object(obj)

    def replace_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._write()
        return super().replace_object(obj)

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        self._write()
        super().delete_object(kind, name, namespace)


def test_an_apply_cut_short_at_any_step_leaves_no_usable_namespace_without_its_guards(
    rt: Runtime, kube: KubeCluster, api: Any, names: Callable[[], str]
) -> None:
    wm = rt.backends.for_pool("training")
    assert isinstance(wm, KubernetesWorkloadManager)
    adm = client.AdmissionregistrationV1Api(api.api_client)
    k = 0
    while True:
        name = names()
        ns = f"tenant-{name}"
        want = spec(rt, name, training=8)
        # Without the shared guards, so that their steps are cut too.
        for remove, guard in itertools.product(
            (
                adm.delete_validating_admission_policy_binding,
                adm.delete_validating_admission_policy,
            ),
            (GUARD, OBJECTS_GUARD),
        ):
            try:
                remove(guard)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        cut = CutShort(kube.kubeconfig, k)
        tenants = KubernetesTenants(cut, wm.pools)
        try:
            planned = tenants.plan(want)
            if k == len(planned):
                break
            with pytest.raises(SchedulerError) as err:
                tenants.apply(want)
        finally:
            cut.close()
        if k == 0:  # nothing was changed: the cause itself
            assert isinstance(err.value, Unreachable)
        else:
            assert isinstance(err.value, Interrupted)
            assert isinstance(err.value.cause, Unreachable)
            assert err.value.done == planned[:k]
        for user, groups in users_of(ns):
            if allowed(api, user, groups, ns, "create", "", "pods"):
                assert guarded(api, ns, 8), f"step {k}: {user} has access without the guards"
        k += 1
    # guards (2 policies, 2 bindings), namespace, quota, limits, network policy, SA, Role,
    # RoleBinding
    assert k == 11
    # The last one converges with a whole client, and only then do its users get in.
    assert rt.tenants.apply(want, actor=OPERATOR).changes
    assert all(allowed(api, u, g, ns, "create", "", "pods") for u, g in users_of(ns))
    assert guarded(api, ns, 8)


# Last: after kube-apiserver restarts, kwok and the controllers take a while to re-watch.
def test_api_server_stopped_mid_apply_fails_clearly_and_the_next_apply_converges(
    rt: Runtime,
    kube: KubeCluster,
    api: Any,
    names: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = names()
    want = spec(rt, name, training=8)
    backend = rt.backends.tenants_by_pool["training"]
    assert isinstance(backend, KubernetesTenants)
    kube_client = backend.client
    applied: list[str] = []
    real_apply = kube_client.apply_object

    def apply_then_crash(obj: dict[str, Any]) -> dict[str, Any]:
        out = real_apply(obj)
        applied.append(obj["kind"])
        if len(applied) == 4:  # namespace, quota, ... (after the guard, where absent)
            pid = kube.apiserver_pid()
            os.kill(pid, signal.SIGKILL)
            kube.wait("kube-apiserver to exit", lambda: exited(pid), 30)
        return out

    monkeypatch.setattr(kube_client, "apply_object", apply_then_crash)
    try:
        with pytest.raises(PartialError, match=r"stopped after 4 change\(s\)") as err:
            rt.tenants.apply(want, actor=OPERATOR)
        assert "is the API server up?" in str(err.value) and err.value.exit_code == 4
        # Partly live: recorded as such, so that list shows it and delete finds it.
        record = rt.store.tenant(name)
        assert record is not None and record.state == "partial"
        [entry] = rt.store.audit(target=name)
        assert entry.action == "tenant.apply.partial"
        # Exactly what is live: the first four steps, guards before any access.
        assert [c["target"].split()[0] for c in entry.detail["changes"]] == [
            k.lower() for k in applied
        ]
        assert not {"serviceaccount", "role", "rolebinding"} & {k.lower() for k in applied}
    finally:
        kube.up()
        kwok_takes_over(kube)
    monkeypatch.undo()
    ns = f"tenant-{name}"
    for user, groups in users_of(ns):
        assert not allowed(api, user, groups, ns, "create", "", "pods")
    rest = rt.tenants.apply(want, actor=OPERATOR)
    # What the crash cut off (the objects after the first four) is created now.
    assert rest.changes and {c.kind for _, c in rest.changes} == {ChangeKind.CREATE}
    assert f"rolebinding {ns}/computectl-tenant" in {c.target for _, c in rest.changes}
    assert rt.tenants.plan(want).empty
    record = rt.store.tenant(name)
    assert record is not None and record.state != "partial"
