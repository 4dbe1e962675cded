"""The result schema every check produces, on a node or in the control plane."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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


class ResultError(ValueError):
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
    def from_dict(cls, data: Mapping[str, Any], *, node: str | None = None) -> CheckResult:
        """Parse and validate one result; ``node``, when given, must match or fill it."""
        if not isinstance(data, Mapping):
            raise ResultError("a result must be a JSON object")
        known = {
            "node",
            "check",
            "version",
            "status",
            "at",
            "suite",
            "fatal",
            "evidence",
            "values",
            "gpus",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ResultError(f"unknown field(s) in result: {', '.join(unknown)}")
        name = data.get("node", node)
        if node is not None and name != node:
            raise ResultError(f"result names node {name!r} but was posted for {node!r}")
        check = data.get("check")
        if not isinstance(name, str) or not name:
            raise ResultError("result needs a non-empty 'node'")
        if not isinstance(check, str) or not check:
            raise ResultError("result needs a non-empty 'check'")
        version = data.get("version", "")
        if not isinstance(version, str) or not version:
            raise ResultError(f"{check}: result needs a non-empty 'version'")
        try:
            status = Status(str(data.get("status")))
        except ValueError:
            raise ResultError(
                f"{check}: 'status' must be one of pass, warn, fail; got {data.get('status')!r}"
            ) from None
        try:
            suite = Suite(data.get("suite", "passive"))
        except ValueError:
            raise ResultError(f"{check}: 'suite' must be passive or burnin") from None
        at = _parse_time(data.get("at"), check)
        fatal = data.get("fatal", False)
        if not isinstance(fatal, bool):
            raise ResultError(f"{check}: 'fatal' must be true or false")
        evidence = data.get("evidence", "")
        if not isinstance(evidence, str):
            raise ResultError(f"{check}: 'evidence' must be a string")
        values = data.get("values", {})
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and _is_value(v) for k, v in values.items()
        ):
            raise ResultError(f"{check}: 'values' must map names to numbers, strings or booleans")
        gpus = data.get("gpus", [])
        if not isinstance(gpus, list | tuple) or not all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus
        ):
            raise ResultError(f"{check}: 'gpus' must be a list of GPU indices")
        return cls(
            node=name,
            check=check,
            version=version,
            status=status,
            at=at,
            suite=suite,
            fatal=fatal and status is Status.FAIL,
            evidence=evidence[:2000],
            values=dict(values),
            gpus=tuple(gpus),
        )


def _is_value(v: object) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, int | str | bool)


def _parse_time(raw: object, check: str) -> datetime:
    if not isinstance(raw, str):
        raise ResultError(f"{check}: 'at' must be an ISO 8601 timestamp")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ResultError(f"{check}: 'at' is not an ISO 8601 timestamp: {raw!r}") from None
    if at.tzinfo is None:
        raise ResultError(f"{check}: 'at' must carry a time zone (e.g. 'Z' or '+00:00')")
    return at.astimezone(UTC)
