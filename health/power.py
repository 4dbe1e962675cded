"""A node's power, and the node agent's side of power caps (docs/power.md).

Per GPU: draw and limits (current, enforced, default, min, max) through a ``PowerSource``
(NVML on a real node, health/nvml.py; the simulated fleet, health/simulated/power.py). The
node's own draw from its BMC where it has one: IPMI DCMI (``ipmitool dcmi power reading``);
a missing tool, no BMC or an error is "not available", never a failure of the node. Redfish
is not supported yet.

The agent (``exchange``) posts the readings, is answered with what to apply or restore,
does it clamped to each GPU's min/max, reads the limits back and posts again with the
outcomes. The answer is outside input: an action it cannot read is skipped, not obeyed.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# A limit read back within this of what was set is what was set (mW rounding).
TOLERANCE_WATTS = 1.0
MAX_ACTIONS = 64
MAX_WATTS = 5_000.0
IPMITOOL_TIMEOUT_SECONDS = 5.0
DCMI_SOURCE = "ipmi-dcmi"


class PowerError(Exception):
    """A limit could not be set or read (no permission, not supported, NVML error)."""


@dataclass(frozen=True, slots=True)
class GpuPower:
    index: int
    uuid: str
    power_watts: float
    limit_watts: float | None = None
    enforced_limit_watts: float | None = None
    default_limit_watts: float | None = None
    min_limit_watts: float | None = None
    max_limit_watts: float | None = None

    def body(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "uuid": self.uuid,
            "power_watts": round(self.power_watts, 3),
            "limit_watts": self.limit_watts,
            "enforced_limit_watts": self.enforced_limit_watts,
            "default_limit_watts": self.default_limit_watts,
            "min_limit_watts": self.min_limit_watts,
            "max_limit_watts": self.max_limit_watts,
        }


@dataclass(frozen=True, slots=True)
class NodeReading:
    """The BMC's reading of the whole node: watts, or None and why not."""

    watts: float | None = None
    source: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class NodePower:
    gpus: tuple[GpuPower, ...]
    node: NodeReading = field(default_factory=NodeReading)

    def by_index(self) -> dict[int, GpuPower]:
        return {g.index: g for g in self.gpus}

    def body(self, outcomes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        return {
            "gpus": [g.body() for g in self.gpus],
            "node_watts": self.node.watts,
            "node_source": self.node.source,
            "node_error": self.node.error[:200],
            "outcomes": list(outcomes),
        }


class PowerSource(Protocol):
    def read_power(self) -> tuple[GpuPower, ...]: ...

    def node_reading(self, ipmitool: str | None) -> NodeReading:
        """The whole node's draw (its BMC through ``ipmitool``, None: not read)."""
        ...

    def set_limit(self, index: int, watts: float) -> float:
        """Set GPU ``index``'s power limit; returns the limit read back."""
        ...


# -- clamping and the actions ------------------------------------------------------------


def clamp(watts: float, lo: float | None, hi: float | None) -> float:
    """``watts`` within the GPU's [min, max] (each bound where known)."""
    if hi is not None:
        watts = min(watts, hi)
    if lo is not None:
        watts = max(watts, lo)
    return watts


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    action: str  # apply | revert
    watts: float = 0.0
    gpus: tuple[int, ...] | None = None
    restore: Mapping[int, float | None] = field(default_factory=dict)


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) and 0 < v <= MAX_WATTS else None


def parse_actions(raw: object) -> tuple[list[Action], list[str]]:
    """The control plane's answer's actions; those it cannot read are skipped (and said)."""
    if not isinstance(raw, list):
        return [], ["the answer carries no list of actions"] if raw is not None else []
    out: list[Action] = []
    skipped: list[str] = []
    for item in raw[:MAX_ACTIONS]:
        try:
            out.append(_action(item))
        except (TypeError, ValueError, KeyError) as exc:
            skipped.append(f"action skipped: {str(exc)[:200]}")
    return out, skipped


def _index(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 64:
        raise ValueError(f"bad GPU index {v!r:.40}")
    return v


def _action(item: object) -> Action:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    cap_id = item["id"]
    if isinstance(cap_id, bool) or not isinstance(cap_id, int) or not 1 <= cap_id < 2**62:
        raise ValueError("bad cap id")
    if item["action"] == "apply":
        watts = _finite(item["watts"])
        if watts is None:
            raise ValueError(f"cap {cap_id}: bad watts")
        gpus = item.get("gpus")
        if gpus is not None and not isinstance(gpus, list):
            raise ValueError(f"cap {cap_id}: bad GPU list")
        return Action(cap_id, "apply", watts, None if gpus is None else tuple(map(_index, gpus)))
    if item["action"] == "revert":
        restore = item.get("restore", {})
        if not isinstance(restore, dict):
            raise ValueError(f"cap {cap_id}: bad restore")
        limits: dict[int, float | None] = {}
        for k, v in restore.items():
            if not isinstance(k, str) or not k.isdigit():
                raise ValueError(f"cap {cap_id}: bad GPU {k!r:.20}")
            limits[_index(int(k))] = None if v is None else _finite(v)
        return Action(cap_id, "revert", restore=limits)
    raise ValueError(f"cap {cap_id}: unknown action")


def apply_actions(
    source: PowerSource, actions: Sequence[Action], reading: tuple[GpuPower, ...]
) -> list[dict[str, Any]]:
    """Do each action; its outcome as the control plane takes it (per GPU: before, clamped,
    after). A GPU it names that this node lacks, or a limit NVML refuses, fails the action
    with the reason; the GPUs done before stay as read back (the outcome says so)."""
    gpus = {g.index: g for g in reading}
    out = []
    for a in actions:
        if a.action == "apply":
            targets = {
                i: clamp(a.watts, gpus[i].min_limit_watts, gpus[i].max_limit_watts)
                for i in (a.gpus if a.gpus is not None else sorted(gpus))
                if i in gpus
            }
            missing = [i for i in (a.gpus or ()) if i not in gpus]
        else:
            targets = {}
            for i, before in a.restore.items():
                if i in gpus:
                    limit = before if before is not None else gpus[i].default_limit_watts
                    if limit is not None:
                        targets[i] = clamp(limit, gpus[i].min_limit_watts, gpus[i].max_limit_watts)
            missing = [i for i in a.restore if i not in gpus]
        per_gpu, errors = [], [f"GPU {i} is not on this node" for i in missing]
        for i, target in targets.items():
            entry: dict[str, Any] = {"index": i, "before": gpus[i].limit_watts, "clamped": target}
            try:
                after = source.set_limit(i, target)
                entry["after"] = after
                if abs(after - target) > TOLERANCE_WATTS:
                    errors.append(f"GPU {i} reads back {after:g} W, not {target:g} W")
            except PowerError as exc:
                entry["after"] = gpus[i].limit_watts
                errors.append(f"GPU {i}: {exc}")
            per_gpu.append(entry)
        out.append(
            {
                "id": a.id,
                "action": a.action,
                "ok": not errors,
                "detail": "; ".join(errors)[:500],
                "gpus": per_gpu,
            }
        )
    return out


def exchange(
    source: PowerSource,
    post: Callable[[dict[str, Any]], Mapping[str, Any]],
    ipmitool: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One round of the agent: post the readings, do what the answer asks, post the
    outcomes with the readings after. Returns the outcomes and lines to tell the operator."""
    node = source.node_reading(ipmitool)
    first = NodePower(source.read_power(), node)
    answer = post(first.body())
    actions, notes = parse_actions(answer.get("actions"))
    if not actions:
        return [], notes
    outcomes = apply_actions(source, actions, first.gpus)
    post(NodePower(source.read_power(), node).body(outcomes))
    notes += [
        f"power cap {o['id']}: {o['action']} {'done' if o['ok'] else 'failed: ' + o['detail']}"
        for o in outcomes
    ]
    return outcomes, notes


# -- the BMC: IPMI DCMI ------------------------------------------------------------------

_INSTANT = re.compile(r"Instantaneous power reading\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*Watts", re.I)
_STATE = re.compile(r"Power reading state is\s*:\s*(\w+)", re.I)


def parse_dcmi(text: str) -> float:
    """The instantaneous reading of ``ipmitool dcmi power reading``'s output, in watts;
    ValueError when there is none or the BMC says it is not active."""
    state = _STATE.search(text)
    if state is not None and state.group(1).lower() not in ("activated", "active"):
        raise ValueError(f"the BMC's power reading is {state.group(1)}")
    found = _INSTANT.search(text)
    if found is None:
        raise ValueError("no instantaneous power reading in ipmitool's output")
    watts = float(found.group(1))
    if not 0 < watts <= 100_000:
        raise ValueError(f"implausible reading {watts:g} W")
    return watts


def read_dcmi(
    tool: str | None = "ipmitool",
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
    timeout: float = IPMITOOL_TIMEOUT_SECONDS,
) -> NodeReading:
    """The node's draw from its BMC; "not available" (with why) rather than an error."""
    if not tool:
        return NodeReading(error="not available: the BMC is not read ([power] ipmitool off)")
    path = which(tool)
    if path is None:
        return NodeReading(error=f"not available: {tool} not found")
    try:
        done = run(
            [path, "dcmi", "power", "reading"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NodeReading(error=f"not available: {type(exc).__name__}: {exc}"[:200])
    if done.returncode != 0:
        why = (done.stderr or done.stdout or "").strip().splitlines()
        return NodeReading(
            error=f"not available: ipmitool exit {done.returncode}: {why[-1] if why else ''}"[:200]
        )
    try:
        return NodeReading(watts=parse_dcmi(done.stdout), source=DCMI_SOURCE)
    except ValueError as exc:
        return NodeReading(error=f"not available: {exc}"[:200])
