"""What each answer of the API must look like before the CLI prints it.

A server is outside: an answer of the wrong shape is one line (``BadAnswer``), never a
traceback half-way through a table. Only what the CLI reads is checked; more keys are fine.
A shape is a type (or a tuple of types), ``Time`` (an ISO 8601 timestamp), a dict of
keys to shapes (a key ending in "?" may be missing), ``[shape]`` (a list of them), or
``Map(shape)`` (an object of any keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compute.client.errors import BadAnswer

NoneType = type(None)
STR = str
OPT_STR = (str, NoneType)
INT = int
NUM = (int, float)
OPT_NUM = (int, float, NoneType)
ANY = object


class Time:
    """An ISO 8601 timestamp (as the views write them)."""


class OptTime(Time):
    """A timestamp, or null."""


@dataclass(frozen=True)
class Map:
    """A JSON object of any keys, each value of ``values``."""

    values: Any


def check(value: Any, shape: Any, where: str) -> Any:
    """``value`` if it has ``shape``; else BadAnswer naming where it is wrong."""
    _check(value, shape, where)
    return value


def _check(value: Any, shape: Any, where: str) -> None:
    if isinstance(shape, type) and issubclass(shape, Time):
        if value is None and shape is OptTime:
            return
        if not isinstance(value, str) or not _is_time(value):
            _wrong(where, "a timestamp", value)
        return
    if isinstance(shape, Map):
        if not isinstance(value, dict):
            _wrong(where, "an object", value)
        for key, item in value.items():
            _check(item, shape.values, f"{where}[{key!r}]"[:120])
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            _wrong(where, "an object", value)
        for key, sub in shape.items():
            name = key.removesuffix("?")
            if name in value:
                _check(value[name], sub, f"{where}.{name}")
            elif name == key:
                raise BadAnswer(f"the server's answer lacks {where}.{key}")
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            _wrong(where, "a list", value)
        for i, item in enumerate(value):
            _check(item, shape[0], f"{where}[{i}]")
        return
    types = shape if isinstance(shape, tuple) else (shape,)
    # JSON has no separate booleans and integers in Python's eyes: keep them apart.
    if isinstance(value, bool) and bool not in types and object not in types:
        _wrong(where, _names(types), value)
    if not isinstance(value, types):
        _wrong(where, _names(types), value)


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(
        {"str": "a string", "int": "an integer", "float": "a number", "NoneType": "null"}.get(
            t.__name__, t.__name__
        )
        for t in types
    )


def _wrong(where: str, expected: str, value: Any) -> None:
    got = type(value).__name__.replace("NoneType", "null").replace("dict", "an object")
    raise BadAnswer(f"the server's answer has {got} at {where}, not {expected}")


# -- the views the CLI prints (compute/views.py writes them) ------------------------------------

FINDING = (dict, NoneType)
NODE = {
    "name": STR,
    "pool": STR,
    "rack": STR,
    "gpu_model": STR,
    "gpu_count": INT,
    "state": STR,
    "state_since": Time,
    "drain_reason": OPT_STR,
    "drain_owner": OPT_STR,
    "drain_actor": OPT_STR,
    "deferred_reason": OPT_STR,
    "jobs_running": INT,
    "gpus_allocated": INT,
    "backend_state": OPT_STR,
    "finding": FINDING,
    "burn_in_failures": INT,
}
DRAINED = {**NODE, "left_running": [STR]}
RESULT = {"check": STR, "suite": STR, "status": STR, "at": Time, "evidence": STR}
EVENT = {
    "at": Time,
    "node": STR,
    "pool": OPT_STR,
    "kind": STR,
    "reason": OPT_STR,
    "actor": OPT_STR,
}
NODE_DETAIL = {
    **NODE,
    "gpus": [{"index": INT, "uuid": OPT_STR, "serial": OPT_STR, "model": OPT_STR}],
    "results": [RESULT],
    "events": [EVENT],
}
BATCH = {"nodes": [NODE], "refused": [{"node": STR, "code": STR, "detail": STR}]}
CAPACITY = {
    "installed_gpus": INT,
    "total_gpus": INT,
    "by_state": [{"pool": STR, "gpu_model": STR, "state": STR, "gpus": INT}],
    "by_tenant": [{"tenant": STR, "pool": STR, "gpu_model": STR, "gpus": INT}],
}
SWEEP = {
    "duration_seconds": NUM,
    "nodes": INT,
    "results": INT,
    "actions": [{"node": STR, "action": STR, "reason": OPT_STR}],
    "deferred": [{"node": STR, "reason": OPT_STR}],
    "errors": [STR],
}
POOL = {
    "name": STR,
    "backend": STR,
    "mode": STR,
    "observe_checks": [STR],
    "mode_changed_at": OPT_STR,
    "mode_actor": OPT_STR,
}
POOL_REPORT = {
    "pool": STR,
    "mode": STR,
    "since": STR,
    "until": STR,
    "would": Map({"by_check": Map(INT), "nodes": [STR]}),
    "held": {"drains": INT, "nodes": [STR]},
}
INCIDENT = {
    "id": INT,
    "state": STR,
    "opened_at": STR,
    "scope_kind": STR,
    "scope": STR,
    "cause": OPT_STR,
    "nodes": [STR],
    "held": INT,
    "summary": STR,
    "evidence": {
        "drained?": [{"node": STR, "check": STR, "at": STR}],
        "held?": [{"node": STR, "check": STR, "at": STR}],
    },
    "released_at": OPT_STR,
    "released_by": OPT_STR,
}
QUOTA = {"pool": STR, "gpu_model": STR, "gpus": INT}
SPEC = {
    "users": [STR],
    "quotas": [QUOTA],
    "gpu_hours_budget": OPT_NUM,
    "max_wall_time_minutes": (int, NoneType),
}
TENANT = {
    "name": STR,
    "state": STR,
    "spec": SPEC,
    "gpus_allocated": Map(INT),
    "gpus_allocated_at": OPT_STR,
    "updated_at": Time,
}
TENANT_DETAIL = {**TENANT, "jobs": [{"state": STR}]}
PLAN = {
    "tenant": STR,
    "changes": [{"backend": STR, "kind": STR, "target": STR, "before": ANY, "after": ANY}],
}
USAGE = {
    "tenant": STR,
    "since": Time,
    "until": Time,
    "days": INT,
    "rows": [
        {"day": STR, "pool": STR, "gpu_model": STR, "gpu_hours": NUM, "source": STR},
    ],
    "notes": [STR],
}
RMA = {
    "node": STR,
    "pool": STR,
    "rack": STR,
    "gpu_model": STR,
    "gpu_count": INT,
    "state": STR,
    "state_since": Time,
    "drain_reason": OPT_STR,
    "suspect_gpus": [INT],
    "xid_codes": [INT],
    "gpus": [{"index": INT, "uuid": OPT_STR, "serial": OPT_STR}],
    "failures": [RESULT],
    "burn_in": [{**RESULT, "values": Map(ANY)}],
    "history": [{"at": Time, "kind": STR, "reason": OPT_STR, "actor": OPT_STR}],
}
TOKEN = {
    "id": INT,
    "name": STR,
    "prefix": STR,
    "role": STR,
    "tenant": OPT_STR,
    "node": OPT_STR,
    "state": STR,
    "created_by": STR,
    "expires_at": OPT_STR,
    "last_used_at": OPT_STR,
    "revoked_at": OPT_STR,
}
CREATED = {**TOKEN, "token": STR}
AUDIT = {
    "at": Time,
    "actor": STR,
    "action": STR,
    "target": STR,
    "source": OPT_STR,
    "result": OPT_STR,
}
TENANT_BATCH = {
    "tenants": [PLAN],
    "refused": [{"tenant": STR, "code": STR, "detail": STR}],
}
