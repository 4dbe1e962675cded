"""The one place computectl talks to a Kubernetes API server (the official client).

Everything the Kubernetes backend learns or changes goes through a
`KubeDriver`; `KubeClient` is the driver built on the ``kubernetes`` package.
It returns objects as the API server sends them (plain JSON dicts): the
client's model classes are slow to build for a thousand nodes and would only
be turned back into dicts.  Its failures become `scheduler.errors` types.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scheduler.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SchedulerError,
    TooManyRequests,
    Unreachable,
)

# A list is fetched in pages, so one huge cluster is never one huge response.
_PAGE = 500
# 429s (API priority and fairness, or an eviction the API server asks to retry)
# are retried this often, waiting Retry-After (bounded) or a doubling backoff.
_RETRIES = 5
_BACKOFF_SECONDS = 0.2
_MAX_WAIT_SECONDS = 5.0
# The Eviction API answers 429 when a PodDisruptionBudget forbids the eviction
# *now*; that is a refusal to report, not throttling to wait out.
_PDB_WORDS = ("disruption budget", "disruptionbudget")


class KubeDriver(Protocol):
    """What the backend needs from the API server. Errors are `scheduler.errors` types."""

    def list_nodes(self, label_selector: str = "") -> list[dict[str, Any]]: ...

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
        fields an earlier apply set that ``obj`` no longer has."""

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create only: Conflict when an object of that name exists already."""

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        """Delete (background propagation); gone already is fine."""

    def list_objects(
        self, kind: str, namespace: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` (in ``namespace`` for namespaced kinds)."""

    def delete_collection(self, kind: str, namespace: str, grace_period_seconds: int) -> None:
        """Every object of a namespaced ``kind`` in ``namespace``."""

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int) -> str:
        """A bound token of the ServiceAccount (TokenRequest API), valid for the expiry."""

    def endpoint(self) -> tuple[str, str]:
        """(API server URL, base64 PEM of the CA that signs its certificate, "" if none)."""


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
}
FIELD_MANAGER = "computectl"


class KubeClient:
    """`KubeDriver` over the official client, from a kubeconfig (+ context) or in-cluster.

    The ApiClient is built on first use, so settings with an unreadable kubeconfig
    still load; the first call then fails with a SchedulerError saying why.
    """

    def __init__(
        self,
        kubeconfig: Path | None = None,
        context: str | None = None,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep
        self._api: Any = None
        self._core: Any = None
        self._apis: dict[str, Any] = {}

    def __repr__(self) -> str:
        where = str(self.kubeconfig) if self.kubeconfig is not None else "default/in-cluster"
        return (
            f"KubeClient(kubeconfig={where}, context={self.context}, "
            f"timeout_seconds={self.timeout_seconds:g})"
        )

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = self._core = None
            self._apis = {}

    # -- the driver ----------------------------------------------------------------------------

    def list_nodes(self, label_selector: str = "") -> list[dict[str, Any]]:
        return self._list("list nodes", "list_node", label_selector=label_selector)

    def get_node(self, name: str) -> dict[str, Any]:
        return self._json(f"read node {name}", True, "read_node", name)

    def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        # Not retried here: a patch carrying a resourceVersion must be rebuilt from
        # a fresh read, which only the caller can do.
        return self._json(
            f"patch node {name}",
            False,
            "patch_node",
            name,
            patch,
            _content_type="application/strategic-merge-patch+json",
        )

    def list_pods(self, field_selector: str = "") -> list[dict[str, Any]]:
        return self._list("list pods", "list_pod_for_all_namespaces", field_selector=field_selector)

    def list_namespaces(self, label_selector: str = "") -> list[dict[str, Any]]:
        return self._list("list namespaces", "list_namespace", label_selector=label_selector)

    def evict_pod(self, namespace: str, name: str) -> str | None:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        what = f"evict pod {namespace}/{name}"
        for attempt in range(_RETRIES + 1):
            try:
                self._raw(what, "create_namespaced_pod_eviction", name, namespace, body)
                return None
            except NotFound:
                return None  # gone already: what eviction wanted
            except _Refused as refused:
                if _is_pdb_refusal(refused.message) or attempt == _RETRIES:
                    return refused.message
                self._sleep(refused.wait if refused.wait is not None else _backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None:
        with contextlib.suppress(NotFound):  # gone already
            self._call(
                f"delete pod {namespace}/{name}",
                True,
                "delete_namespaced_pod",
                name,
                namespace,
                grace_period_seconds=grace_period_seconds,
            )

    # -- tenants -------------------------------------------------------------------------------

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        api, suffix, namespaced = _kind(kind)
        args = (name, namespace) if namespaced else (name,)
        try:
            return self._json(
                f"read {_what(kind, name, namespace)}", True, f"read_{suffix}", *args, _on=api
            )
        except NotFound:
            return None

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = str(obj.get("kind", ""))
        api, suffix, namespaced = _kind(kind)
        m = obj.get("metadata") or {}
        name, namespace = str(m.get("name", "")), str(m.get("namespace", ""))
        args = (name, namespace, obj) if namespaced else (name, obj)
        return self._json(
            f"apply {_what(kind, name, namespace)}",
            True,
            f"patch_{suffix}",
            *args,
            _on=api,
            field_manager=FIELD_MANAGER,
            force=True,  # only ever applied to objects carrying computectl's marker
            _content_type="application/apply-patch+yaml",  # JSON is YAML
        )

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = str(obj.get("kind", ""))
        api, suffix, namespaced = _kind(kind)
        m = obj.get("metadata") or {}
        name, namespace = str(m.get("name", "")), str(m.get("namespace", ""))
        args = (namespace, obj) if namespaced else (obj,)
        # A 429 means the object was not created, so retrying cannot create it twice.
        return self._json(
            f"create {_what(kind, name, namespace)}",
            True,
            f"create_{suffix}",
            *args,
            _on=api,
            field_manager=FIELD_MANAGER,
        )

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        api, suffix, namespaced = _kind(kind)
        args = (name, namespace) if namespaced else (name,)
        with contextlib.suppress(NotFound):
            self._call(
                f"delete {_what(kind, name, namespace)}",
                True,
                f"delete_{suffix}",
                *args,
                _on=api,
                propagation_policy="Background",
            )

    def list_objects(
        self, kind: str, namespace: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        api, suffix, namespaced = _kind(kind)
        if namespaced:
            return self._list(
                f"list {kind} in {namespace}",
                f"list_{suffix}",
                namespace,
                _on=api,
                label_selector=label_selector,
            )
        return self._list(f"list {kind}", f"list_{suffix}", _on=api, label_selector=label_selector)

    def delete_collection(self, kind: str, namespace: str, grace_period_seconds: int) -> None:
        api, suffix, _namespaced = _kind(kind)
        self._call(
            f"delete every {kind} in {namespace}",
            True,
            f"delete_collection_{suffix}",
            namespace,
            _on=api,
            grace_period_seconds=grace_period_seconds,
            propagation_policy="Background",
        )

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        out = self._json(
            f"request a token for serviceaccount {namespace}/{name}",
            False,
            "create_namespaced_service_account_token",
            name,
            namespace,
            body,
        )
        token = (out.get("status") or {}).get("token")
        if not token:
            raise SchedulerError(f"token request for {namespace}/{name}: no token in the answer")
        return str(token)

    def endpoint(self) -> tuple[str, str]:
        self._core_api()
        cfg = self._api.configuration
        ca = ""
        if cfg.ssl_ca_cert:
            try:
                ca = base64.b64encode(Path(cfg.ssl_ca_cert).read_bytes()).decode()
            except OSError as exc:
                raise SchedulerError(f"cannot read the API server's CA: {exc}") from None
        return str(cfg.host), ca

    # -- the plumbing --------------------------------------------------------------------------

    def _core_api(self) -> Any:
        if self._core is None:
            from kubernetes import client
            from kubernetes import config as k8s_config

            config: Any = k8s_config  # the package has no type hints

            try:
                if self.kubeconfig is not None:
                    api = config.new_client_from_config(
                        config_file=str(self.kubeconfig),
                        context=self.context,
                        persist_config=False,
                    )
                else:
                    # In a pod: its ServiceAccount; elsewhere $KUBECONFIG or ~/.kube/config.
                    cfg = client.Configuration()
                    try:
                        config.load_incluster_config(client_configuration=cfg)
                    except config.ConfigException:
                        config.load_kube_config(
                            context=self.context, client_configuration=cfg, persist_config=False
                        )
                    api = client.ApiClient(cfg)
            except (config.ConfigException, OSError, ValueError) as exc:
                where = self.kubeconfig or "the default kubeconfig / in-cluster config"
                raise SchedulerError(
                    f"cannot load Kubernetes credentials from {where}: {exc}"
                ) from None
            self._api = api
            self._core = client.CoreV1Api(api)
        return self._core

    def _api_of(self, name: str) -> Any:
        if name == "CoreV1Api":
            return self._core_api()
        if name not in self._apis:
            from kubernetes import client

            self._core_api()
            self._apis[name] = getattr(client, name)(self._api)
        return self._apis[name]

    def _list(
        self, what: str, method: str, *args: str, _on: str = "CoreV1Api", **selectors: str
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            kwargs: dict[str, Any] = {k: v for k, v in selectors.items() if v}
            kwargs["limit"] = _PAGE
            if cont:
                kwargs["_continue"] = cont
            page = self._json(what, True, method, *args, _on=_on, **kwargs)
            items += page.get("items") or []
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                return items

    def _json(
        self, what: str, retry: bool, method: str, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        data = self._call(what, retry, method, *args, **kwargs)
        try:
            out = json.loads(data)
        except ValueError:
            raise SchedulerError(f"{what}: the API server sent no JSON") from None
        if not isinstance(out, dict):
            raise SchedulerError(f"{what}: the API server sent {type(out).__name__}, not an object")
        return out

    def _call(self, what: str, retry: bool, method: str, *args: Any, **kwargs: Any) -> bytes:
        """One request; with ``retry``, 429s are waited out (bounded) and tried again."""
        attempt = 0
        while True:
            try:
                return self._raw(what, method, *args, **kwargs)
            except _Refused as refused:
                if not retry or attempt >= _RETRIES:
                    raise TooManyRequests(f"{what}: {refused.message}") from None
                self._sleep(refused.wait if refused.wait is not None else _backoff(attempt))
                attempt += 1

    def _raw(
        self, what: str, method: str, *args: Any, _on: str = "CoreV1Api", **kwargs: Any
    ) -> bytes:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api = self._api_of(_on)
        try:
            resp = getattr(api, method)(
                *args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs
            )
            data: bytes = resp.data
            return data
        except ApiException as exc:
            raise translate(what, exc) from None
        except HTTPError as exc:
            host = getattr(getattr(self._api, "configuration", None), "host", "the API server")
            raise Unreachable(
                f"{what}: cannot reach {host}: {_urllib3_cause(exc, self.timeout_seconds)}"
            ) from None


class _Refused(SchedulerError):
    """An HTTP 429, before it is known whether to wait, report or raise it."""

    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait


def _kind(kind: str) -> tuple[str, str, bool]:
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidRequest(f"computectl does not handle objects of kind {kind!r}") from None


def _what(kind: str, name: str, namespace: str) -> str:
    return f"{kind.lower()} {namespace}/{name}" if namespace else f"{kind.lower()} {name}"


def translate(what: str, exc: Any) -> SchedulerError:
    """An ApiException → the matching SchedulerError (429 → `_Refused`, for the retry loop)."""
    status = int(getattr(exc, "status", 0) or 0)
    message = _status_message(exc)
    if status == 429:
        return _Refused(message, _retry_after(exc))
    kinds: dict[int, type[SchedulerError]] = {
        400: InvalidRequest,
        401: PermissionDenied,
        403: PermissionDenied,
        404: NotFound,
        409: Conflict,
        422: InvalidRequest,
    }
    if status == 0:
        return Unreachable(f"{what}: {message}")
    return kinds.get(status, SchedulerError)(f"{what}: {message} (HTTP {status})")


def _status_message(exc: Any) -> str:
    """The message of the Status object the API server answers errors with."""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            return " ".join(str(body).split())[:300]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(getattr(exc, "reason", "") or "no message")


def _retry_after(exc: Any) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return min(float(str(headers.get("Retry-After"))), _MAX_WAIT_SECONDS)
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int) -> float:
    return float(min(_BACKOFF_SECONDS * 2**attempt, _MAX_WAIT_SECONDS))


def _is_pdb_refusal(message: str) -> bool:
    return any(w in message.lower() for w in _PDB_WORDS)


def _urllib3_cause(exc: Exception, timeout_seconds: float) -> str:
    # MaxRetryError hides the useful part ("Connection refused") in .reason.
    reason = getattr(exc, "reason", None)
    text = " ".join(str(reason if reason is not None else exc).split())
    if "refused" in text.lower():
        return "connection refused (is the API server up?)"
    if "remotedisconnected" in text.lower() or "connection aborted" in text.lower():
        # A pooled connection of an API server that has just gone away.
        return "connection closed by the server (is the API server up?)"
    if "timed out" in text.lower():
        return f"no answer within {timeout_seconds:g} s"
    return text
