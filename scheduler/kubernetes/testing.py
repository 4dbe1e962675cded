"""An in-memory API server for tests of the layers above: the `KubeDriver` seam of
`scheduler.kubernetes.driver`, answering as the API server does for what computectl asks.

    kube = InMemoryKube()
    kube.add_node("gpu-1", {"computectl.io/pool": "training"})
    wm = KubernetesWorkloadManager(kube, {"training": {"computectl.io/pool": "training"}})
    kube.add_pod("team-a", "train-0", "gpu-1", gpus=4)
    with kube.down():
        wm.list_nodes()  # Unreachable, as with kube-apiserver stopped

Nodes take strategic merge patches (lists such as taints are replaced whole, None deletes
a key) checked against their resourceVersion; evictions always succeed (no disruption
budgets); other objects are stored as given (apply merges, replace overwrites).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scheduler.errors import Conflict, NotFound, Unreachable
from scheduler.kubernetes.driver import kind_of
from scheduler.kubernetes.objects import GPU_PRODUCT_LABEL, labels_of, meta

UNREACHABLE = "in-memory API server: connection refused"
_Key = tuple[str, str, str]  # kind, namespace, name


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _selected(obj: dict[str, Any], label_selector: str) -> bool:
    labels = labels_of(obj)
    for term in filter(None, label_selector.split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k) != v:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _fields_match(obj: dict[str, Any], field_selector: str) -> bool:
    for term in filter(None, field_selector.split(",")):
        if "!=" in term:
            path, v = term.split("!=", 1)
            if _field(obj, path) == v:
                return False
        else:
            path, v = term.split("=", 1)
            if _field(obj, path) != v:
                return False
    return True


@dataclass
class InMemoryKube:
    """Nodes, pods, namespaces and computectl's other objects, held in memory."""

    reachable: bool = True
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    objects: dict[_Key, dict[str, Any]] = field(default_factory=dict)
    evicted: list[str] = field(default_factory=list)
    _version: int = 0

    # -- what a test puts in the cluster -------------------------------------------------------

    def add_node(
        self,
        name: str,
        labels: dict[str, str],
        gpus: int = 8,
        gpu_resource: str = "nvidia.com/gpu",
        product: str = "NVIDIA-H100-80GB-HBM3",
    ) -> None:
        self.nodes[name] = {
            "metadata": {
                "name": name,
                "labels": {GPU_PRODUCT_LABEL: product, **labels},
                "resourceVersion": self._bump(),
            },
            "spec": {},
            "status": {
                "allocatable": {gpu_resource: str(gpus)},
                "capacity": {gpu_resource: str(gpus)},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    def add_pod(
        self, namespace: str, name: str, node: str, gpus: int, resource: str = "nvidia.com/gpu"
    ) -> None:
        """A running pod holding ``gpus`` GPUs of ``node``."""
        self.pods[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "main", "resources": {"requests": {resource: gpus}}}],
            },
            "status": {"phase": "Running"},
        }

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The API server unreachable inside the block."""
        self.reachable = False
        try:
            yield
        finally:
            self.reachable = True

    # -- the KubeDriver seam: nodes and pods ---------------------------------------------------

    def list_nodes(self, label_selector: str = "") -> list[dict[str, Any]]:
        self._contact()
        return [copy.deepcopy(n) for n in self.nodes.values() if _selected(n, label_selector)]

    def get_node(self, name: str) -> dict[str, Any]:
        self._contact()
        if name not in self.nodes:
            raise NotFound(f'nodes "{name}" not found')
        return copy.deepcopy(self.nodes[name])

    def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        node = self.get_node(name)
        wanted = meta(patch).get("resourceVersion")
        if wanted is not None and wanted != meta(node).get("resourceVersion"):
            raise Conflict(f'Operation cannot be fulfilled on nodes "{name}"')
        node = _merge(node, patch)
        node["metadata"]["resourceVersion"] = self._bump()
        self.nodes[name] = node
        return copy.deepcopy(node)

    def list_pods(self, field_selector: str = "") -> list[dict[str, Any]]:
        self._contact()
        return [copy.deepcopy(p) for p in self.pods.values() if _fields_match(p, field_selector)]

    def list_namespaces(self, label_selector: str = "") -> list[dict[str, Any]]:
        return self.list_objects("Namespace", "", label_selector)

    def evict_pod(self, namespace: str, name: str) -> str | None:
        self._contact()
        if self.pods.pop((namespace, name), None) is not None:
            self.evicted.append(f"{namespace}/{name}")
        return None

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None:
        self._contact()
        self.pods.pop((namespace, name), None)

    def close(self) -> None:
        pass

    # -- the KubeDriver seam: any other object -------------------------------------------------

    def get_object(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        self._contact()
        obj = self.objects.get(self._key(kind, name, namespace))
        return copy.deepcopy(obj) if obj is not None else None

    def apply_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._contact()
        key = self._key_of(obj)
        merged = _merge(self.objects.get(key, {}), obj)
        merged.setdefault("metadata", {})["resourceVersion"] = self._bump()
        self.objects[key] = merged
        return copy.deepcopy(merged)

    def replace_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._contact()
        key = self._key_of(obj)
        old = self.objects.get(key)
        if old is None:
            raise NotFound(f"{key[0]} {key[2]} not found")
        wanted = meta(obj).get("resourceVersion")
        if wanted is not None and wanted != meta(old).get("resourceVersion"):
            raise Conflict(f"the object has been modified: {key[0]} {key[2]}")
        new = copy.deepcopy(obj)
        new.setdefault("metadata", {})["resourceVersion"] = self._bump()
        self.objects[key] = new
        return copy.deepcopy(new)

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._contact()
        if self._key_of(obj) in self.objects:
            raise Conflict(f"{obj.get('kind')} {meta(obj).get('name')} already exists")
        return self.apply_object(obj)

    def delete_object(self, kind: str, name: str, namespace: str = "") -> None:
        self._contact()
        self.objects.pop(self._key(kind, name, namespace), None)
        if kind == "Namespace":
            for key in [k for k in self.objects if k[1] == name]:
                del self.objects[key]

    def list_objects(
        self, kind: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        self._contact()
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in self.objects.items()
            if k == kind
            and (not namespace or ns == namespace)
            and _selected(obj, label_selector)
            and _fields_match(obj, field_selector)
        ]

    def delete_collection(self, kind: str, namespace: str, grace_period_seconds: int) -> None:
        self._contact()
        for key in [k for k in self.objects if k[0] == kind and k[1] == namespace]:
            del self.objects[key]

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int) -> str:
        self._contact()
        return f"token-of-{namespace}-{name}"

    def endpoint(self) -> tuple[str, str]:
        return ("https://in-memory.invalid", "")

    # -- helpers -------------------------------------------------------------------------------

    def _contact(self) -> None:
        if not self.reachable:
            raise Unreachable(UNREACHABLE)

    def _bump(self) -> str:
        self._version += 1
        return str(self._version)

    @staticmethod
    def _key(kind: str, name: str, namespace: str) -> _Key:
        namespaced = kind_of(kind)[2]
        return (kind, namespace if namespaced else "", name)

    def _key_of(self, obj: dict[str, Any]) -> _Key:
        m = meta(obj)
        return self._key(str(obj.get("kind", "")), str(m.get("name", "")), m.get("namespace", ""))
