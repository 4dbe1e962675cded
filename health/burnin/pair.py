"""The node side of the multi-node pair test: an all-reduce between two nodes.

A workload manager starts this once on each node of a pair (an ``srun`` with
one task per node, or a Job with one pod per node). Each side starts one
worker per local GPU; together they form one NCCL group of 2 x GPUs ranks,
rendezvousing on the first node's address, and time an all-reduce through the
fabric between the two nodes. The figure is nccl-tests' bus bandwidth, so a
pair is comparable with every other pair of the pool: the slow one stands out.

Without CUDA the same path runs on the CPU (gloo, one worker per node, small
sizes): CI exercises it; the figure then judges nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from health.burnin.allreduce import GIB, MIB, AllReduceGroup, load_torch, run_allreduce
from health.probe import ProbeError

RESULT_KIND = "computectl.pair"
_LOOPBACK = ("127.", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    address: str


def parse_peers(text: str) -> tuple[Peer, Peer]:
    """``A@ADDR,B@ADDR`` (an address may be left out: ``A,B`` rendezvous on the names)."""
    peers = []
    for item in text.split(","):
        name, _, address = item.strip().partition("@")
        if not name:
            raise ProbeError(f"--peers {text!r}: every peer needs a node name (NAME@ADDRESS)")
        peers.append(Peer(name, address or name))
    if len(peers) != 2 or peers[0].name == peers[1].name:
        raise ProbeError(f"--peers {text!r}: a pair is two different nodes")
    return peers[0], peers[1]


@dataclass(frozen=True, slots=True)
class PairProbe:
    peers: tuple[Peer, Peer]
    node: str
    port: int
    device: str | None = None  # "cuda", "cpu"; None: CUDA where PyTorch sees it
    nbytes: int | None = None
    timeout_seconds: float = 300.0

    def rank(self) -> int:
        names = [p.name for p in self.peers]
        if self.node not in names:
            raise ProbeError(
                f"this node is {self.node!r}, not one of the pair ({', '.join(names)}); pass --node"
            )
        return names.index(self.node)

    def run(self) -> dict[str, Any] | None:
        """Both sides block until the all-reduce is done; the first node returns the result."""
        rank = self.rank()
        torch = load_torch()
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device == "cuda":
            if not torch.cuda.is_available():
                raise ProbeError("CUDA is not available to PyTorch (driver, or a CPU-only build)")
            local = int(torch.cuda.device_count())
            backend = "nccl"
        elif device == "cpu":
            local, backend = 1, "gloo"
        else:
            raise ProbeError(f"unknown device {device!r} (cuda or cpu)")
        nbytes = self.nbytes or (GIB if backend == "nccl" else 16 * MIB)
        master = self.peers[0].address
        figures = run_allreduce(
            AllReduceGroup(
                init_method=f"tcp://{_bracket(master)}:{self.port}",
                rank_base=rank * local,
                local_ranks=local,
                world_size=2 * local,
                backend=backend,
                loopback=master.startswith(_LOOPBACK),
            ),
            nbytes,
            self.timeout_seconds,
        )
        if figures is None:
            return None
        return {
            "kind": RESULT_KIND,
            "nodes": [p.name for p in self.peers],
            "device": device,
            "backend": backend,
            "gpus_per_node": local if device == "cuda" else 0,
            **figures,
        }


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def result_line(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)


def parse_result(output: str) -> dict[str, Any] | None:
    """The pair result among whatever a job printed (srun joins every task's output)."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("kind") == RESULT_KIND:
            return doc
    return None
