"""Text any store and any encoder takes: the fallback when a record was refused as it was.

Input is validated at every entry, so this is for what slipped past: text a workload
manager reported (a drain reason someone else set), or rows written before a rule
existed. One bad record must never stop the others, so the record is kept with its
text made safe (each offending character replaced, visibly) rather than dropped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from compute.domain import AuditEntry, Event, Node
from health.policy import Finding
from health.result import CheckResult

REPLACEMENT = "\ufffd"
# Longest text kept in one field by the fallback; validated input is far shorter.
MAX_CHARS = 4000


def safe(text: str) -> str:
    """``text`` with NUL, other control characters, lone surrogates and unassigned
    code points replaced, and cut to MAX_CHARS; ordinary text (any script) is kept."""
    if text.isprintable():  # the common case, in C: no control, surrogate or unassigned
        return text[:MAX_CHARS]
    out = []
    for ch in text[:MAX_CHARS]:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Cn"):
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)


def safe_value(value: Any) -> Any:
    """JSON-like data with every string (keys too) made safe, and numbers JSON can hold."""
    if isinstance(value, str):
        return safe(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else safe(str(value))
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Mapping):
        return {safe(str(k)): safe_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_value(v) for v in value]
    return safe(str(value))


def safe_node(node: Node) -> Node:
    health = node.health
    f = health.finding
    if f is not None:
        health = health.evolve(
            finding=Finding(safe(f.check), safe(f.evidence), f.fatal, f.at, f.gpus)
        )
    return node.evolve(
        drain_reason=safe(node.drain_reason),
        drain_actor=safe(node.drain_actor),
        deferred_reason=safe(node.deferred_reason),
        backend_state=safe(node.backend_state),
        health=health.evolve(
            last_values=safe_value(dict(health.last_values)),
            drain_blocked=tuple(safe(b) for b in health.drain_blocked),
        ),
    )


def safe_event(event: Event) -> Event:
    return replace(
        event,
        reason=safe(event.reason),
        actor=safe(event.actor),
        detail=safe_value(dict(event.detail)),
    )


def safe_audit(entry: AuditEntry) -> AuditEntry:
    return replace(entry, actor=safe(entry.actor), detail=safe_value(dict(entry.detail)))


def safe_result(result: CheckResult) -> CheckResult:
    return replace(
        result,
        check=safe(result.check),
        version=safe(result.version),
        evidence=safe(result.evidence),
        values=safe_value(dict(result.values)),
    )
