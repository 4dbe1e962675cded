"""A pool's per-GPU share of its nodes' CPUs and memory, from ``sinfo --json`` (pure).

A tenant buys GPUs, but a job also holds CPUs and memory, and a job holding all of a
node's CPUs with no GPU leaves that node's GPUs to no one. A tenant with N GPUs may
therefore hold at most N GPUs' worth of CPUs and memory: N * (a node's CPUs / its GPUs)
and N * (its memory / its GPUs), floored. Where the partition's nodes differ, the
smallest share of each is used (a tenant never holds more than its GPUs' share of any
node) and `PoolShare.note` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import floor
from typing import Any

from scheduler.errors import InvalidRequest
from scheduler.slurm.parse import parse_gpus


@dataclass(frozen=True, slots=True)
class NodeShape:
    """What one node has: CPUs, memory (MB, slurm.conf's RealMemory) and GPUs."""

    name: str
    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True, slots=True)
class PoolShare:
    """CPUs and memory (MB) per GPU of one partition; ``uniform``: all its GPU nodes agree."""

    partition: str
    cpus_per_gpu: Fraction
    memory_mb_per_gpu: Fraction
    uniform: bool = True

    def limits(self, gpus: int) -> dict[str, str]:
        """``GrpTRES`` keys for a quota of ``gpus`` (floored: never more than the share)."""
        return {
            "cpu": str(floor(gpus * self.cpus_per_gpu)),
            "mem": str(floor(gpus * self.memory_mb_per_gpu)),
        }

    @property
    def note(self) -> str:
        if self.uniform:
            return ""
        return (
            f"cpu, mem: the smallest per-GPU share of partition {self.partition}'s nodes, "
            f"which differ ({_num(self.cpus_per_gpu)} CPUs, "
            f"{_num(self.memory_mb_per_gpu)}M per GPU)"
        )


def node_shapes(sinfo: Mapping[str, Any], partition: str) -> list[NodeShape]:
    """The nodes of ``partition`` in ``sinfo --json`` (22.05 lists every node: filter here)."""
    out = []
    nodes = sinfo.get("nodes")
    # Outside input: a node or field of another shape is no node of the partition.
    for raw in nodes if isinstance(nodes, list) else []:
        parts = raw.get("partitions") if isinstance(raw, Mapping) else None
        if not isinstance(parts, list) or partition not in parts:
            continue
        out.append(
            NodeShape(
                name=str(raw.get("name") or ""),
                cpus=_count(raw.get("cpus")),
                memory_mb=_count(raw.get("real_memory")),
                gpus=parse_gpus(str(raw.get("gres") or ""))[1],
            )
        )
    return out


def pool_share(nodes: list[NodeShape], partition: str) -> PoolShare:
    """The smallest per-GPU share of CPUs and of memory among ``nodes`` that have GPUs.

    Nodes without GPUs are left out: a job in a GPU pool must hold a GPU, so it cannot
    run on them, and they have no per-GPU share. A partition without a GPU node (or whose
    nodes report no CPUs or memory) is refused: no bound could be computed, and a quota
    without one is what lets a tenant hold a pool's CPUs with no GPU.
    """
    gpu_nodes = [n for n in nodes if n.gpus > 0]
    if not gpu_nodes:
        raise InvalidRequest(
            f"partition {partition} has no node with GPUs (sinfo), so the CPUs and memory "
            "a tenant may hold there cannot be sized"
        )
    empty = sorted(n.name for n in gpu_nodes if n.cpus <= 0 or n.memory_mb <= 0)
    if empty:
        raise InvalidRequest(
            # Names as Slurm gave them, quoted and escaped: one line whatever they hold.
            f"node(s) {', '.join(map(repr, empty))} of partition {partition} report no CPUs or "
            "memory (sinfo), so the CPUs and memory a tenant may hold there cannot be sized"
        )
    cpus = [Fraction(n.cpus, n.gpus) for n in gpu_nodes]
    memory = [Fraction(n.memory_mb, n.gpus) for n in gpu_nodes]
    return PoolShare(
        partition, min(cpus), min(memory), uniform=len(set(cpus)) == len(set(memory)) == 1
    )


def _count(value: object) -> int:
    # sinfo prints numbers; anything else (absent, null, text) counts as none.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _num(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):.2f}"
