"""The seam between the Kubernetes backend and an API server: `KubeDriver`, and the kinds
of object it reads and writes for tenants.

`scheduler.kubernetes.client.KubeClient` implements it over the official client; tests
and benchmarks wrap that (never a fake API server).
"""

from __future__ import annotations

from typing import Any, Protocol

from scheduler.errors import InvalidRequest


class KubeDriver(Protocol):
    """What the backend needs from the API server. Errors are `scheduler.errors` types."""

    def list_nodes(self, label_selector: str = "") -> list[dict[str, Any]]:
        """Every matching node, or an error: never part of the list (a node missing from it
        is taken for a deleted one)."""

    def get_node(self, name: str) -> dict[str, Any]: ...

    def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A strategic merge patch; with metadata.resourceVersion it fails with Conflict if stale.

        Node taints are an atomic list, so the patch carries the whole new list.
        """

    def list_pods(self, field_selector: str = "") -> list[dict[str, Any]]:
        """Pods of every namespace."""

    def list_namespaces(self, label_selector: str = "") -> list[dict[str, Any]]: ...

    def evict_pod(self, namespace: str, name: str) -> str | None:
        """Evict through the Eviction API: None when done (or the pod is gone), else why not."""

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None: ...

    def close(self) -> None:
        """Release connections (idempotent)."""

    # -- tenants: any object of `KINDS`, by kind and name ------------------------------------

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager ``computectl``: creates or updates, and drops
        fields an earlier apply set that ``obj`` no longer has. Fields other writers own
        stay: to take an object back whole, use `replace_object`."""

    def replace_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace (PUT) the object with ``obj``, as field manager ``computectl``: whatever
        ``obj`` leaves out is gone afterwards, whoever wrote it. NotFound if it is absent;
        Conflict if ``obj``'s metadata.resourceVersion is no longer the object's."""

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create only: Conflict when an object of that name exists already."""

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        """Delete (background propagation); gone already is fine."""

    def list_objects(
        self, kind: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` (in ``namespace`` for namespaced kinds; every namespace's
        when ``namespace`` is "")."""

    def delete_collection(self, kind: str, namespace: str, grace_period_seconds: int) -> None:
        """Every object of a namespaced ``kind`` in ``namespace``."""

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int) -> str:
        """A bound token of the ServiceAccount (TokenRequest API), valid for the expiry."""

    def endpoint(self) -> tuple[str, str]:
        """(API server URL, base64 PEM of the CA that signs its certificate, "" if none)."""


# The API class of custom resources; their "suffix" is group/version/plural.
CUSTOM = "CustomObjectsApi"
# kind → (API class of the official client, its method suffix, namespaced): enough to
# read, apply, delete and list the objects a tenant consists of.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "ServiceAccount": ("CoreV1Api", "namespaced_service_account", True),
    "ResourceQuota": ("CoreV1Api", "namespaced_resource_quota", True),
    "LimitRange": ("CoreV1Api", "namespaced_limit_range", True),
    "PersistentVolumeClaim": ("CoreV1Api", "namespaced_persistent_volume_claim", True),
    "Pod": ("CoreV1Api", "namespaced_pod", True),
    "Service": ("CoreV1Api", "namespaced_service", True),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map", True),
    "Secret": ("CoreV1Api", "namespaced_secret", True),
    "Deployment": ("AppsV1Api", "namespaced_deployment", True),
    "StatefulSet": ("AppsV1Api", "namespaced_stateful_set", True),
    "ReplicaSet": ("AppsV1Api", "namespaced_replica_set", True),
    "DaemonSet": ("AppsV1Api", "namespaced_daemon_set", True),
    "Job": ("BatchV1Api", "namespaced_job", True),
    "CronJob": ("BatchV1Api", "namespaced_cron_job", True),
    "Role": ("RbacAuthorizationV1Api", "namespaced_role", True),
    "RoleBinding": ("RbacAuthorizationV1Api", "namespaced_role_binding", True),
    "NetworkPolicy": ("NetworkingV1Api", "namespaced_network_policy", True),
    "ValidatingAdmissionPolicy": (
        "AdmissionregistrationV1Api",
        "validating_admission_policy",
        False,
    ),
    "ValidatingAdmissionPolicyBinding": (
        "AdmissionregistrationV1Api",
        "validating_admission_policy_binding",
        False,
    ),
    # Kueue's custom resources: CustomObjectsApi, addressed by "group/version/plural".
    "ResourceFlavor": (CUSTOM, "kueue.x-k8s.io/v1beta2/resourceflavors", False),
    "ClusterQueue": (CUSTOM, "kueue.x-k8s.io/v1beta2/clusterqueues", False),
    "LocalQueue": (CUSTOM, "kueue.x-k8s.io/v1beta2/localqueues", True),
    "Workload": (CUSTOM, "kueue.x-k8s.io/v1beta2/workloads", True),
}
FIELD_MANAGER = "computectl"


def kind_of(kind: str) -> tuple[str, str, bool]:
    """(API class, method suffix, namespaced) of a kind computectl handles."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidRequest(f"computectl does not handle objects of kind {kind!r}") from None


def describe(kind: str, name: str, namespace: str) -> str:
    """An object in words, for messages: ``rolebinding tenant-a/computectl-tenant``."""
    return f"{kind.lower()} {namespace}/{name}" if namespace else f"{kind.lower()} {name}"


def names_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    m = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(m.get("name", "")), str(m.get("namespace", ""))


def address(
    verb: str, kind: str, name: str, namespace: str, body: dict[str, Any] | None = None
) -> tuple[str, str, tuple[Any, ...]]:
    """The API class, method and positional arguments of ``verb`` (read, patch, replace,
    create, delete, list, delete_collection) on an object of ``kind``. A namespaced kind
    listed without a namespace is listed in every namespace."""
    api, suffix, namespaced = kind_of(kind)
    whole = (body,) if body is not None else ()
    if api == CUSTOM:
        group, version, plural = suffix.split("/")
        custom_verb = {"read": "get"}.get(verb, verb)
        if namespaced and namespace:
            where: tuple[Any, ...] = (group, version, namespace, plural)
            method = f"{custom_verb}_namespaced_custom_object"
        else:
            where, method = (group, version, plural), f"{custom_verb}_cluster_custom_object"
        named = (name,) if verb in ("read", "patch", "replace", "delete") else ()
        return api, method, (*where, *named, *whole)
    if verb == "list" and namespaced and not namespace:
        return api, f"list_{suffix.removeprefix('namespaced_')}_for_all_namespaces", ()
    named = (name,) if verb in ("read", "patch", "replace", "delete") else ()
    scope = (namespace,) if namespaced else ()
    if verb == "create":
        return api, f"create_{suffix}", (*scope, *whole)
    return api, f"{verb}_{suffix}", (*named, *scope, *whole)
