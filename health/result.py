"""The result schema every check produces, on a node or in the control plane."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from health import inputs
from health.inputs import InputError, node_name, printable

Value = float | int | str | bool


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class Suite(StrEnum):
    PASSIVE = "passive"
    BURNIN = "burnin"


# The check name of the one result that gives burn-in's overall verdict.
BURNIN_SUMMARY = "burnin"


class ResultError(InputError):
    """A result (typically posted by a node) does not follow the schema."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict on one node at one time.

    ``fatal`` marks a failure that must not wait for a second opinion (a GPU
    fell off the bus); the policy drains on it at once. ``values`` holds the
    measured figures behind the verdict, in base units named in the keys.
    """

    node: str
    check: str
    version: str
    status: Status
    at: datetime
    suite: Suite = Suite.PASSIVE
    fatal: bool = False
    evidence: str = ""
    values: Mapping[str, Value] = field(default_factory=dict)
    gpus: tuple[int, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "check": self.check,
            "version": self.version,
            "status": self.status.value,
            "at": self.at.isoformat(),
            "suite": self.suite.value,
            "fatal": self.fatal,
            "evidence": self.evidence,
            "values": dict(self.values),
            "gpus": list(self.gpus),
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        node: str | None = None,
        now: datetime | None = None,
        max_age: timedelta | None = None,
    ) -> CheckResult:
        """Parse and validate one result; ``node``, when given, must match or fill it.

        With ``now``, the result's time must lie between ``now - max_age`` and a few
        minutes after ``now`` (a result from the future would never be pruned, one older
        than the retention would be pruned at once).
        """
        if not isinstance(data, Mapping):
            raise ResultError("a result must be a JSON object")
        unknown = sorted(str(k) for k in set(data) - _FIELDS)
        if unknown:
            raise ResultError(f"unknown field(s) in result: {printable(', '.join(unknown))}")
        name = data.get("node", node)
        if node is not None and name != node:
            shown = ascii(name) if isinstance(name, str) and len(name) <= 80 else "another"
            raise ResultError(f"result names node {shown} but was posted for {node!r}")
        if not data.get("check"):
            raise ResultError("result needs a non-empty 'check'")
        try:
            name = node_name(name, "result's 'node'")
            check = inputs.name(
                data.get("check"),
                "result's 'check'",
                inputs.CHECK_NAME,
                "1-64 lower-case letters, digits, '_', '.' or '-'",
            )
        except InputError as exc:
            raise ResultError(str(exc)) from None
        try:
            return cls._fields(data, name, check, now, max_age)
        except InputError as exc:
            raise ResultError(f"{check}: {exc}") from None

    @classmethod
    def _fields(
        cls,
        data: Mapping[str, Any],
        name: str,
        check: str,
        now: datetime | None,
        max_age: timedelta | None,
    ) -> CheckResult:
        version = inputs.name(
            data.get("version", ""),
            "'version'",
            inputs.VERSION,
            "1-32 letters, digits or '._+~:-'",
        )
        raw_status = data.get("status")
        if not isinstance(raw_status, str) or raw_status not in _STATUSES:
            shown = ascii(raw_status) if isinstance(raw_status, str | int | None) else "?"
            raise InputError(f"'status' must be one of pass, warn, fail; got {shown[:40]}")
        raw_suite = data.get("suite", "passive")
        if not isinstance(raw_suite, str) or raw_suite not in _SUITES:
            raise InputError("'suite' must be passive or burnin")
        at = inputs.timestamp(data.get("at"), "'at'")
        if now is not None:
            inputs.recent(at, "'at'", now, max_age or timedelta(days=14))
        fatal = data.get("fatal", False)
        if not isinstance(fatal, bool):
            raise InputError("'fatal' must be true or false")
        evidence = inputs.text(
            data.get("evidence", ""), "'evidence'", max_len=inputs.MAX_EVIDENCE, multiline=True
        )
        status = Status(raw_status)
        return cls(
            node=name,
            check=check,
            version=version,
            status=status,
            at=at,
            suite=Suite(raw_suite),
            fatal=fatal and status is Status.FAIL,
            evidence=evidence,
            values=_values(data.get("values", {})),
            gpus=_gpus(data.get("gpus", [])),
        )


_FIELDS = frozenset(
    {"node", "check", "version", "status", "at", "suite", "fatal", "evidence", "values", "gpus"}
)
_STATUSES = frozenset(s.value for s in Status)
_SUITES = frozenset(s.value for s in Suite)


def _values(raw: object) -> dict[str, Value]:
    what = "'values' must map names to numbers, strings or booleans"
    if not isinstance(raw, Mapping):
        raise InputError(what)
    if len(raw) > inputs.MAX_VALUES:
        raise InputError(f"{what}, {inputs.MAX_VALUES} at most")
    out: dict[str, Value] = {}
    for key, v in raw.items():
        try:
            key = inputs.text(key, "a key", max_len=inputs.MAX_VALUE_KEY, empty=False)
            if isinstance(v, bool):
                out[key] = v
            elif isinstance(v, int):
                out[key] = inputs.integer(v, "each number")
            elif isinstance(v, float):
                out[key] = inputs.number(v, "each number")
            elif isinstance(v, str):
                out[key] = inputs.text(v, "each string", max_len=inputs.MAX_VALUE_TEXT)
            else:
                raise InputError(f"{key!a} is a {type(v).__name__}")
        except InputError as exc:
            raise InputError(f"{what} ({exc})") from None
    return out


def _gpus(raw: object) -> tuple[int, ...]:
    what = f"'gpus' must be a list of GPU indices (0-{inputs.MAX_GPU_INDEX}, each once)"
    if not isinstance(raw, list | tuple) or len(raw) > inputs.MAX_GPU_INDEX + 1:
        raise InputError(what)
    try:
        gpus = tuple(inputs.integer(g, "an index", 0, inputs.MAX_GPU_INDEX) for g in raw)
    except InputError:
        raise InputError(what) from None
    if len(set(gpus)) != len(gpus):
        raise InputError(what)
    return gpus
