"""The one place computectl talks to a Kubernetes API server (the official client).

Everything the Kubernetes backend learns or changes goes through a `KubeDriver`
(`scheduler.kubernetes.driver`); `KubeClient` is the driver built on the ``kubernetes``
package. It returns objects as the API server sends them (plain JSON dicts: the model
classes are slow to build for a thousand nodes and would only be turned back into dicts).
Its failures become `scheduler.errors` types (`scheduler.kubernetes.responses`)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scheduler.errors import NotFound, SchedulerError, TooManyRequests, Unreachable
from scheduler.kubernetes.driver import (
    FIELD_MANAGER,
    KINDS,
    KubeDriver,
    address,
    describe,
    names_of,
)
from scheduler.kubernetes.responses import (
    Expired,
    Refused,
    backoff,
    close_pool,
    is_pdb_refusal,
    list_page,
    translate,
    urllib3_cause,
)
from scheduler.kubernetes.token_review import ReviewedToken, review_body, reviewed

__all__ = ["KINDS", "KubeClient", "KubeDriver", "translate"]

# A list is fetched in pages, so one huge cluster is never one huge response.
_PAGE = 500
# 429s are retried this often (`scheduler.kubernetes.responses` says how long to wait).
_RETRIES = 5
# A list whose continue token expired (410) starts over this often, then fails.
_LIST_RESTARTS = 2


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
        self._lock = threading.Lock()

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
            except Refused as refused:
                if is_pdb_refusal(refused.message) or attempt == _RETRIES:
                    return refused.message
                self._sleep(refused.wait if refused.wait is not None else backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None:
        what, grace = f"delete pod {namespace}/{name}", grace_period_seconds
        with contextlib.suppress(NotFound):  # gone already
            self._call(
                what, True, "delete_namespaced_pod", name, namespace, grace_period_seconds=grace
            )

    # -- tenants -------------------------------------------------------------------------------

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        api, method, args = address("read", kind, name, namespace)
        try:
            return self._json(
                f"read {describe(kind, name, namespace)}", True, method, *args, _on=api
            )
        except NotFound:
            return None

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name, namespace = names_of(obj)
        api, method, args = address("patch", kind, name, namespace, obj)
        return self._json(
            f"apply {describe(kind, name, namespace)}",
            True,
            method,
            *args,
            _on=api,
            field_manager=FIELD_MANAGER,
            force=True,  # only ever applied to objects carrying computectl's marker
            _content_type="application/apply-patch+yaml",  # JSON is YAML
        )

    def replace_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name, namespace = names_of(obj)
        api, method, args = address("replace", kind, name, namespace, obj)
        return self._json(
            f"replace {describe(kind, name, namespace)}",
            True,
            method,
            *args,
            _on=api,
            field_manager=FIELD_MANAGER,
        )

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name, namespace = names_of(obj)
        api, method, args = address("create", kind, name, namespace, obj)
        # A 429 means the object was not created, so retrying cannot create it twice.
        return self._json(
            f"create {describe(kind, name, namespace)}",
            True,
            method,
            *args,
            _on=api,
            field_manager=FIELD_MANAGER,
        )

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        api, method, args = address("delete", kind, name, namespace)
        with contextlib.suppress(NotFound):
            self._call(
                f"delete {describe(kind, name, namespace)}",
                True,
                method,
                *args,
                _on=api,
                propagation_policy="Background",
            )

    def list_objects(
        self, kind: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        return self._list_kind(kind, namespace, label_selector, field_selector, "")

    def list_cached(
        self, kind: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """`list_objects` from the API server's watch cache (``resourceVersion=0``), which
        may be a moment behind: for a snapshot as old as its lists anyway (many tenants at
        once); the consistent lists took the API server about twice the CPU."""
        return self._list_kind(kind, namespace, label_selector, field_selector, "0")

    def _list_kind(
        self, kind: str, namespace: str, labels: str, fields: str, version: str
    ) -> list[dict[str, Any]]:
        api, method, args = address("list", kind, "", namespace)
        what = f"list {kind}" + (f" in {namespace}" if namespace else "")
        wanted = {"label_selector": labels, "field_selector": fields, "resource_version": version}
        return self._list(what, method, *args, _on=api, **wanted)

    def delete_collection(self, kind: str, namespace: str, grace_period_seconds: int) -> None:
        api, method, args = address("delete_collection", kind, "", namespace)
        self._call(
            f"delete every {kind} in {namespace}",
            True,
            method,
            *args,
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

    def review_token(self, token: str, audiences: Sequence[str]) -> ReviewedToken | None:
        """Who ``token`` is for ``audiences`` (TokenReview); None when not authenticated."""
        # A review creates nothing, so a 429 is safe to retry. The token is in no message.
        answer = self._json(
            "review a token",
            True,
            "create_token_review",
            review_body(token, audiences),
            _on="AuthenticationV1Api",
        )
        return reviewed(answer)

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
        with self._lock:  # many tenants are written from several threads
            return self._core_api_locked()

    def _core_api_locked(self) -> Any:
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
        with self._lock:
            if name not in self._apis:
                from kubernetes import client

                self._core_api_locked()
                self._apis[name] = getattr(client, name)(self._api)
            return self._apis[name]

    def _list(
        self, what: str, method: str, *args: str, _on: str = "CoreV1Api", **selectors: str
    ) -> list[dict[str, Any]]:
        """Every page, or an error: a list cut short would read as objects that are gone.

        The pages of one list are one snapshot; when its continue token expires (410) the
        list starts over, a bounded number of times.
        """
        for restart in range(_LIST_RESTARTS + 1):
            items: list[dict[str, Any]] = []
            cont = ""
            try:
                while True:
                    kwargs: dict[str, Any] = {k: v for k, v in selectors.items() if v}
                    kwargs["limit"] = _PAGE
                    if cont:
                        # The token carries the list's version; the API server refuses both.
                        kwargs.pop("resource_version", None)
                        kwargs["_continue"] = cont
                    page_items, cont = list_page(
                        what, self._json(what, True, method, *args, _on=_on, **kwargs)
                    )
                    items += page_items
                    if not cont:
                        return items
            except Expired:
                if not cont or restart == _LIST_RESTARTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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
            except Refused as refused:
                if not retry or attempt >= _RETRIES:
                    raise TooManyRequests(f"{what}: {refused.message}") from None
                self._sleep(refused.wait if refused.wait is not None else backoff(attempt))
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
            close_pool(api)
            host = getattr(getattr(self._api, "configuration", None), "host", "the API server")
            raise Unreachable(
                f"{what}: cannot reach {host}: {urllib3_cause(exc, self.timeout_seconds)}"
            ) from None
