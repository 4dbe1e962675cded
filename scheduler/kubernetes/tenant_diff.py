"""How a tenant's live objects compare with what its spec asks for, and the steps between.

Pure functions over the API server's JSON (`scheduler.kubernetes.tenant_objects` builds
what is wanted; `scheduler.kubernetes.tenants` reads and writes). computectl owns whole
the labels under its prefixes and the parts of its objects listed in `OWNED_WHOLE`:
whatever another hand added there (a ``pool.computectl.io/<pool>`` label the admission
guard would trust, a ``hard`` key or a ``scopes`` list in the quota, an
``objectSelector`` in the guard's binding) is a difference, and the write that repairs
it is a replace, which leaves nothing of the other writer's in those parts. A
ServiceAccount token Secret in a tenant's namespace is drift too: apply deletes it. Fields the
API server fills in by default are not differences (`SERVER_DEFAULTS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.kubernetes import tenant_policy, tenant_queues
from scheduler.kubernetes.objects import TENANT_LABEL, annotations_of, labels_of, meta
from scheduler.kubernetes.tenant_objects import (
    OUR_LABEL_PREFIXES,
    POD_SECURITY,
    POD_SECURITY_PREFIX,
    POOL_ALLOWED_PREFIX,
    TOKEN_SECRET_TYPE,
    base_object,
    is_ours,
    namespace_of,
)
from scheduler.tenants import Change, ChangeKind

_Live = Mapping[tuple[str, str, str], Mapping[str, Any] | None]

# The top-level parts of each kind computectl owns whole (metadata.labels under its
# prefixes are owned whole for every kind).
OWNED_WHOLE: dict[str, tuple[str, ...]] = {
    "ResourceQuota": ("spec",),
    "LimitRange": ("spec",),
    "NetworkPolicy": ("spec",),
    "Role": ("rules",),
    "RoleBinding": ("roleRef", "subjects"),
    "ValidatingAdmissionPolicy": ("spec",),
    "ValidatingAdmissionPolicyBinding": ("spec",),
    "ResourceFlavor": ("spec",),
    "ClusterQueue": ("spec",),
    "LocalQueue": ("spec",),
}
# What the API server (v1.36) fills in where computectl's objects leave a field out:
# (kind, path, value); "*" in a path is every item of a list. Only a field holding exactly
# this value is ignored, so a foreign value in the same place is still a difference.
SERVER_DEFAULTS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("ValidatingAdmissionPolicy", ("spec", "matchConstraints", "matchPolicy"), "Equivalent"),
    ("ValidatingAdmissionPolicy", ("spec", "matchConstraints", "namespaceSelector"), {}),
    ("ValidatingAdmissionPolicy", ("spec", "matchConstraints", "objectSelector"), {}),
    ("ValidatingAdmissionPolicy", ("spec", "matchConstraints", "resourceRules", "*", "scope"), "*"),
    ("ValidatingAdmissionPolicyBinding", ("spec", "matchResources", "matchPolicy"), "Equivalent"),
    ("ValidatingAdmissionPolicyBinding", ("spec", "matchResources", "objectSelector"), {}),
)


def own_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in labels_of(obj).items() if k.startswith(OUR_LABEL_PREFIXES)}


def _project(live: Any, want: Any) -> Any:
    """``live`` cut down to the fields ``want`` sets: the API server's defaults and other
    writers' fields do not count as a difference."""
    if isinstance(want, dict) and isinstance(live, dict):
        return {k: _project(live[k], v) for k, v in want.items() if k in live}
    if isinstance(want, list) and isinstance(live, list) and len(want) == len(live):
        return [_project(a, b) for a, b in zip(live, want, strict=True)]
    return live


def _drop(obj: Any, path: tuple[str, ...], value: Any) -> None:
    """Remove the field at ``path`` from ``obj`` (in place) where it holds ``value``."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in obj if isinstance(obj, list) else []:
            _drop(item, rest, value)
        return
    if not isinstance(obj, dict) or head not in obj:
        return
    if not rest:
        if obj[head] == value:
            del obj[head]
        return
    _drop(obj[head], rest, value)


_DEFAULTED = frozenset(kind for kind, _, _ in SERVER_DEFAULTS)


def _whole(live: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of ``live`` computectl owns whole, without the server's defaults (only
    compared, never changed: copied only where defaults are dropped from them)."""
    kind = str(live.get("kind", ""))
    if kind not in _DEFAULTED:
        return {p: live[p] for p in OWNED_WHOLE.get(kind, ()) if p in live}
    out = {p: json.loads(json.dumps(live[p])) for p in OWNED_WHOLE.get(kind, ()) if p in live}
    for default_kind, path, value in SERVER_DEFAULTS:
        if default_kind == kind:
            _drop(out, path, value)
    return out


def view(live: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """What of ``live`` computectl manages, shaped like ``want``."""
    out: dict[str, Any] = _project(dict(live), dict(want))
    # A label under computectl's prefixes that it does not set (a pool left, or one another
    # hand added) is a difference, like a value it sets that was changed.
    out.setdefault("metadata", {})["labels"] = own_labels(live)
    return out | _whole(live)


def normal(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as `view` would show it had the API server stored it unchanged (shares
    ``obj``'s parts: for comparing only)."""
    return {**obj, "metadata": {**meta(obj), "labels": own_labels(obj)}}


def differs(live: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """``view(live, want) != normal(want)``, without building either: a re-apply of a
    thousand unchanged tenants compares fifteen thousand objects, and the copies were
    most of its time."""
    whole = _whole(live)
    for part, value in whole.items():
        if part not in want or want[part] != value:
            return True
    for k, v in want.items():
        if k != "metadata" and k not in whole and (k not in live or not _holds(live[k], v)):
            return True
    if own_labels(live) != own_labels(want):
        return True
    lm = meta(live)
    return any(k not in lm or not _holds(lm[k], v) for k, v in meta(want).items() if k != "labels")


def _holds(live: Any, want: Any) -> bool:
    """``_project(live, want) == want``: ``live`` has every field of ``want``, equal."""
    if isinstance(want, dict) and isinstance(live, dict):
        return all(k in live and _holds(live[k], v) for k, v in want.items())
    if isinstance(want, list) and isinstance(live, list) and len(want) == len(live):
        return all(_holds(a, b) for a, b in zip(live, want, strict=True))
    return bool(live == want)


def replacement(live: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """The body that replaces ``live`` with ``want``: computectl's parts exactly as wanted;
    labels outside its prefixes and annotations (nobody's guard trusts them) kept."""
    out = json.loads(json.dumps(want))
    m = out["metadata"]
    m["labels"] = {
        k: v for k, v in labels_of(live).items() if not k.startswith(OUR_LABEL_PREFIXES)
    } | dict(m.get("labels") or {})
    notes = annotations_of(live)
    if notes:
        m["annotations"] = notes
    for kept in ("finalizers", "ownerReferences"):
        if meta(live).get(kept):
            m[kept] = meta(live)[kept]
    # Replaces exactly what was read (some kinds refuse an unconditional update): a write
    # in between is a Conflict, and the replace is made again from a fresh read.
    if meta(live).get("resourceVersion"):
        m["resourceVersion"] = meta(live)["resourceVersion"]
    return dict(out)


def target(obj: Mapping[str, Any]) -> str:
    m = meta(obj)
    where = f"{m['namespace']}/" if m.get("namespace") else ""
    return f"{str(obj.get('kind', '')).lower()} {where}{m.get('name', '')}"


def line(obj: Mapping[str, Any]) -> str:
    """The object in one line, in the words kubectl would show."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Namespace":
        labels = own_labels(obj)
        pools = sorted(
            k[len(POOL_ALLOWED_PREFIX) :] for k in labels if k.startswith(POOL_ALLOWED_PREFIX)
        )
        odd = sorted(
            f"{k}={v}"
            for k, v in labels.items()
            if k.startswith(POOL_ALLOWED_PREFIX) and v != "allowed"
        )
        text = f"pools={','.join(pools) or '-'} tenant={labels.get(TENANT_LABEL, '-')}"
        security = {k: v for k, v in labels.items() if k.startswith(POD_SECURITY_PREFIX)}
        if security and security != POD_SECURITY:  # shown only when not computectl's own
            odd += [f"{k[len(POD_SECURITY_PREFIX) :]}={v}" for k, v in sorted(security.items())]
        return text + (f" ({' '.join(odd)})" if odd else "")
    if kind == "ResourceQuota":
        text = " ".join(f"{k}={v}" for k, v in sorted((spec.get("hard") or {}).items()))
        extra = sorted(k for k in spec if k != "hard")
        return text + (f" (+{','.join(extra)})" if extra else "")
    if kind == "RoleBinding":
        subjects = obj.get("subjects") or []
        return "subjects=" + ",".join(f"{s.get('kind')}/{s.get('name')}" for s in subjects)
    if kind == "Role":
        rules = obj.get("rules") or []
        return "resources=" + ",".join(r for rule in rules for r in rule.get("resources") or [])
    if kind == "LimitRange":
        limits = spec.get("limits") or [{}]
        req = limits[0].get("defaultRequest") or {}
        return "defaultRequest " + " ".join(f"{k}={v}" for k, v in sorted(req.items()))
    if kind == "NetworkPolicy":
        return "deny all but same-namespace ingress/egress and DNS"
    if kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        return tenant_policy.line(obj)
    if kind in ("ResourceFlavor", "ClusterQueue", "LocalQueue"):
        return tenant_queues.line(obj)
    return "present"


@dataclass(frozen=True, slots=True)
class Step:
    """One object to write (``obj``) or delete (``obj`` None: ``kind``/``name``/``namespace``).

    A write creates with server-side apply; ``replace`` (an object that exists) puts ``obj``
    in place whole, so other writers' additions in computectl's parts go.
    """

    change: Change
    kind: str
    name: str
    namespace: str = ""
    obj: dict[str, Any] | None = None
    replace: bool = False


def foreign(live: _Live) -> list[str]:
    """Targets of live objects with computectl's names but without its marker."""
    return [target(o) for o in live.values() if o is not None and not is_ours(o)]


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    m = meta(obj)
    return (str(obj.get("kind", "")), str(m.get("namespace", "")), str(m.get("name", "")))


# A shared object's step as found once: (the object wanted, its step or None).
Memo = dict[tuple[str, str, str], tuple[dict[str, Any], "Step | None"]]


def shared(obj: Mapping[str, Any]) -> bool:
    """A cluster-wide object of every tenant's (a guard, a flavor), not of one tenant."""
    return not meta(obj).get("namespace") and TENANT_LABEL not in (meta(obj).get("labels") or {})


def apply_steps(live: _Live, want: list[dict[str, Any]], memo: Memo | None = None) -> list[Step]:
    """Create what is missing, replace what differs (one Change per object), in ``want``'s
    order. With ``memo`` (many tenants against one read of the cluster), a shared object
    is compared once, not once per tenant."""
    out: list[Step] = []
    for obj in want:
        k = key(obj)
        mine = memo is not None and shared(obj)
        if mine and memo is not None and k in memo and memo[k][0] == obj:
            found = memo[k][1]
        else:
            found = _step(k, live.get(k), obj)
            if mine and memo is not None:
                memo[k] = (obj, found)
        if found is not None:
            out.append(found)
    return out


def _step(
    k: tuple[str, str, str], current: Mapping[str, Any] | None, obj: dict[str, Any]
) -> Step | None:
    kind, ns, name = k
    if current is None:
        return Step(Change(ChangeKind.CREATE, target(obj), "", line(obj)), kind, name, ns, obj)
    if differs(current, obj):
        change = Change(ChangeKind.UPDATE, target(obj), line(current), line(obj))
        return Step(change, kind, name, ns, replacement(current, obj), replace=True)
    return None


def token_secret_steps(secrets: Sequence[Mapping[str, Any]]) -> list[Step]:
    """Delete the ServiceAccount token Secrets among a tenant's ``secrets``. The objects
    policy refuses new ones; one made before it existed still holds a token that never
    expires, and deleting its Secret is what invalidates that token."""
    out = []
    for s in secrets:
        if s.get("type") != TOKEN_SECRET_TYPE:
            continue
        name, ns = str(meta(s).get("name", "")), str(meta(s).get("namespace", ""))
        account = annotations_of(s).get("kubernetes.io/service-account.name", "")
        before = f"token of serviceaccount {account} that never expires"
        change = Change(ChangeKind.DELETE, f"secret {ns}/{name}", before, "")
        out.append(Step(change, "Secret", name, ns))
    return out


def delete_steps(name: str, live: _Live, pvcs: list[str], purge_data: bool) -> list[Step]:
    """Remove the tenant's objects (never the shared guard or flavors: a flavor no other
    tenant uses is `KubernetesTenants`' to find; its ClusterQueue, cluster-wide but its
    own, goes), access first and limits last (the reverse of apply).
    The namespace stays while it holds PersistentVolumeClaims, unless ``purge_data``:
    then it goes, and they with it."""
    ns = namespace_of(name)
    out: list[Step] = []
    for (kind, obj_ns, obj_name), obj in reversed(list(live.items())):
        if obj is None or kind == "Namespace":
            continue
        if not obj_ns and labels_of(obj).get(TENANT_LABEL) != name:
            continue
        out.append(
            Step(Change(ChangeKind.DELETE, target(obj), line(obj), ""), kind, obj_name, obj_ns)
        )
    namespace = live.get(("Namespace", "", ns))
    if namespace is None:
        return out
    if pvcs and not purge_data:
        kept = base_object("v1", "Namespace", ns, "", name)  # no pool labels: no GPU pods
        change = Change(
            ChangeKind.UPDATE,
            target(namespace),
            line(namespace),
            f"kept for {len(pvcs)} PersistentVolumeClaim(s); no pools",
        )
        out.append(Step(change, "Namespace", ns, "", replacement(namespace, kept), replace=True))
        return out
    out += [
        Step(
            Change(ChangeKind.DELETE, f"persistentvolumeclaim {ns}/{p}", "data", ""),
            "PersistentVolumeClaim",
            p,
            ns,
        )
        for p in pvcs
    ]
    out.append(
        Step(Change(ChangeKind.DELETE, target(namespace), line(namespace), ""), "Namespace", ns)
    )
    return out
