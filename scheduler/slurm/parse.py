"""Reading Slurm 22.05's ``sinfo --json`` and ``squeue --json`` (openapi v0.0.38).

Pure functions over the decoded JSON: what a node is, which GPUs it has and
uses, which jobs run where.  Newer Slurm releases renamed a few fields; the
readers here take what 22.05 prints and fall back where a field is absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.protocol import NodeStatus
from scheduler.slurm.hostlist import expand
from scheduler.topology import block_domain, topology_name

# Slurm's GRES types are whatever the site wrote in gres.conf (lower case by
# habit); computectl's pools and inventory use these model names.
GPU_MODELS: Mapping[str, str] = {
    "h100": "H100-SXM",
    "h200": "H200",
    "a100": "A100-SXM",
    "b200": "B200",
    "gb200": "GB200",
}

# Node names one topology listing may expand to in all: more than any site has, few enough
# that a hostile hostlist (gpu-[0-999999999]) costs nothing.
MAX_TOPOLOGY_NODES = 1_000_000

# Job states during which a job still holds its nodes.
_ON_NODE_STATES = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "STOPPED"})
_PAREN = re.compile(r"\([^)]*\)")


def gpu_model(gres_type: str) -> str:
    if not gres_type:
        return ""
    return GPU_MODELS.get(gres_type.lower(), gres_type.upper())


def parse_gpus(gres: str | None) -> tuple[str, int]:
    """``gpu:h100:8(S:0-1),nic:2`` → ("h100", 8): the first GPU type and all GPUs counted.

    Also reads job TRES spellings (``gres:gpu:h100:8``, ``gres/gpu:8``).
    """
    if not gres or gres in ("N/A", "(null)"):
        return "", 0
    kind, total = "", 0
    # Strip "(IDX:0,2-3)" / "(S:0-1)" first: they may hold commas of their own.
    for item in _PAREN.sub("", gres).split(","):
        parts = item.strip().split(":")
        if parts and parts[0] in ("gres", "gres/gpu"):
            parts = ["gpu", *parts[1:]] if parts[0] == "gres/gpu" else parts[1:]
        if not parts or parts[0] != "gpu":
            continue
        rest = parts[1:]
        count = 1
        if rest and rest[-1].isdigit():
            count = int(rest[-1])
            rest = rest[:-1]
        if rest and not kind:
            kind = rest[0]
        total += count
    return kind, total


def tres_gpus(tres: str | None) -> int:
    """``cpu=2,gres/gpu=5,gres/gpu:h100=5`` → 5 (the untyped total)."""
    for item in (tres or "").split(","):
        key, _, value = item.partition("=")
        if key == "gres/gpu" and value.isdigit():
            return int(value)
    return 0


def state_flags(raw: Mapping[str, Any]) -> list[str]:
    return [str(f).upper() for f in raw.get("state_flags") or []]


def state_words(raw: Mapping[str, Any]) -> str:
    """Slurm's own words, as scontrol shows them: ``mixed+drain``, ``down+not_responding``."""
    base = str(raw.get("state") or "unknown").lower()
    return "+".join([base, *(f.lower() for f in state_flags(raw))])


def is_drained(raw: Mapping[str, Any]) -> bool:
    """No new work: DRAIN (drained or draining), FAIL, or DOWN."""
    flags = state_flags(raw)
    base = str(raw.get("state") or "").lower()
    return "DRAIN" in flags or "FAIL" in flags or base in ("down", "fail", "error")


def node_pool(raw: Mapping[str, Any], pools: Mapping[str, str]) -> str | None:
    """The pool of the first configured partition the node is in (None: not ours)."""
    mine = set(raw.get("partitions") or [])
    for partition, pool in pools.items():
        if partition in mine:
            return pool
    return None


def node_status(
    raw: Mapping[str, Any], pool: str, jobs: int, *, rack: str = "", switch: str = ""
) -> NodeStatus:
    kind, total = parse_gpus(raw.get("gres"))
    used_kind, used = parse_gpus(raw.get("gres_used"))
    if not used:
        used = tres_gpus(raw.get("tres_used"))
    drained = is_drained(raw)
    words = state_words(raw)
    reason = str(raw.get("reason") or "").strip()
    if drained and not reason:
        # Slurm always asks for a reason, but a node can come up DOWN without one;
        # computectl must still see it as someone else's drain.
        reason = f"slurm: {words}"
    return NodeStatus(
        name=str(raw["name"]),
        pool=pool,
        gpu_model=gpu_model(kind or used_kind),
        gpus_total=total,
        gpus_allocated=min(used, total) if total else used,
        drain=drained,
        reason=reason if drained else "",
        jobs=jobs,
        responding="NOT_RESPONDING" not in state_flags(raw),
        state=words,
        rack=rack,
        switch=switch,
    )


def node_rack(raw: Mapping[str, Any], prefix: str) -> str:
    """The rack a node feature names (``rack:r12`` with prefix ``rack:`` → ``r12``); "" when
    no feature does (or ``prefix`` is ""). 22.05 lists features as one comma-separated
    string, later releases as a list."""
    features = raw.get("features")
    if not prefix or not features:
        return ""
    items = features.split(",") if isinstance(features, str) else features
    if not isinstance(items, list):
        return ""
    for item in items:
        if isinstance(item, str) and item.startswith(prefix):
            return topology_name(item[len(prefix) :].strip())
    return ""


def parse_topology(text: str) -> dict[str, str]:
    """Node → leaf switch from ``scontrol show topology`` (topology/tree): one
    ``SwitchName=leaf1 Level=0 LinkSpeed=1 Nodes=gpu-[001-004]`` line per switch, leaves at
    Level=0. A node under several leaves keeps the first; a switch with a name or a hostlist
    computectl cannot believe is left out."""
    out: dict[str, str] = {}
    budget = MAX_TOPOLOGY_NODES
    for line in text.splitlines():
        fields = _fields(line)
        switch = topology_name(fields.get("SwitchName"))
        if not switch or fields.get("Level") != "0":
            continue
        try:
            nodes = expand(_value(fields.get("Nodes")), limit=budget)
        except ValueError:
            continue
        budget -= len(nodes)
        for node in nodes:
            out.setdefault(node, switch)
    return out


def parse_blocks(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Node → NVLink domain (``block/<name>``) from ``scontrol show topology`` under
    topology/block (Slurm 23.11 and later): one ``BlockName=b1 BlockIndex=0
    Nodes=gb-[01-18] BlockSize=18`` line per block. Aggregated blocks
    (``AggregatedBlock=b[1-2]``) are groups of blocks, not domains, and other plugins' lines
    (``SwitchName=``) say nothing here. A node in several blocks keeps the first. Also the
    blocks not believed: (nodes, name), for the caller to say so."""
    out: dict[str, str] = {}
    unbelieved: list[tuple[str, str]] = []
    budget = MAX_TOPOLOGY_NODES
    for line in text.splitlines():
        fields = _fields(line)
        if "BlockName" not in fields:
            continue
        name, where = fields["BlockName"], _value(fields.get("Nodes"))
        domain = block_domain(name)
        try:
            nodes = expand(where, limit=budget) if domain else []
        except ValueError:
            domain = ""
        if not domain:
            unbelieved.append((f"block of {where[:60]}", name))
            continue
        budget -= len(nodes)
        for node in nodes:
            out.setdefault(node, domain)
    return out, unbelieved


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job that holds nodes, with the GPUs it holds on each."""

    id: str
    account: str
    partition: str
    state: str
    gpus_by_node: dict[str, int] = field(default_factory=dict)


def running_jobs(squeue: Mapping[str, Any]) -> list[RunningJob]:
    out = []
    for raw in squeue.get("jobs") or []:
        state = str(raw.get("job_state") or "").upper()
        if state not in _ON_NODE_STATES:
            continue
        nodes = _job_nodes(raw)
        out.append(
            RunningJob(
                id=str(raw.get("job_id")),
                account=str(raw.get("account") or ""),
                partition=str(raw.get("partition") or ""),
                state=state.lower(),
                gpus_by_node=dict(zip(nodes, _job_gpus(raw, nodes), strict=True)),
            )
        )
    return out


def _job_nodes(raw: Mapping[str, Any]) -> list[str]:
    resources = raw.get("job_resources") or {}
    allocated = [
        str(n["nodename"]) for n in resources.get("allocated_nodes") or [] if n.get("nodename")
    ]
    return allocated or expand(str(raw.get("nodes") or ""))


def _job_gpus(raw: Mapping[str, Any], nodes: list[str]) -> list[int]:
    # gres_detail lists what each allocated node got, in allocated_nodes' order.
    detail = raw.get("gres_detail") or []
    if len(detail) == len(nodes):
        return [parse_gpus(str(d))[1] for d in detail]
    per_node = parse_gpus(raw.get("tres_per_node"))[1]
    if per_node:
        return [per_node] * len(nodes)
    total = tres_gpus(raw.get("tres_alloc_str"))
    return [total // len(nodes) if nodes else 0] * len(nodes)


# Job states after which a job holds nothing and cannot start any more.
_FINISHED_STATES = frozenset(
    {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """One line of ``scontrol show reservation -o``."""

    name: str
    nodes: tuple[str, ...]
    users: tuple[str, ...]
    flags: frozenset[str]
    state: str
    start: str = ""
    end: str = ""


def parse_reservations(text: str) -> list[Reservation]:
    """``ReservationName=r StartTime=... Nodes=gpu-[001-002] ... Users=root State=ACTIVE`` lines.

    The fields computectl reads hold no spaces, so splitting on whitespace is enough.
    """
    out = []
    for line in text.splitlines():
        fields = _fields(line)
        name = fields.get("ReservationName", "")
        if not name:
            continue
        out.append(
            Reservation(
                name=name,
                nodes=tuple(expand(_value(fields.get("Nodes")))),
                users=tuple(u for u in _value(fields.get("Users")).split(",") if u),
                flags=frozenset(f for f in _value(fields.get("Flags")).upper().split(",") if f),
                state=_value(fields.get("State")).upper(),
                start=_value(fields.get("StartTime")),
                end=_value(fields.get("EndTime")),
            )
        )
    return out


def _fields(line: str) -> dict[str, str]:
    """``Key=Value Key=Value`` → {Key: Value} (for fields that hold no spaces)."""
    return dict(item.partition("=")[::2] for item in line.split() if "=" in item)


def _value(v: str | None) -> str:
    return "" if v in (None, "(null)", "N/A") else str(v)


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job that has not finished: pending, running, or ending."""

    id: str
    name: str
    user: str
    state: str
    nodes: tuple[str, ...]


def unfinished_jobs(squeue: Mapping[str, Any], names: frozenset[str]) -> list[QueuedJob]:
    """Jobs named one of ``names`` that may still run (squeue --json lists finished ones too)."""
    out = []
    for raw in squeue.get("jobs") or []:
        name = str(raw.get("name") or "")
        state = str(raw.get("job_state") or "").upper()
        if name not in names or state in _FINISHED_STATES:
            continue
        out.append(
            QueuedJob(
                id=str(raw.get("job_id")),
                name=name,
                user=str(raw.get("user_name") or ""),
                state=state.lower(),
                nodes=tuple(_job_nodes(raw)),
            )
        )
    return out
