"""Multi-node pair tests through a workload manager: one job per pair of nodes.

The control plane plans pairs of nodes and hands each round (pairs that share
no node) to the pool's `PairLauncher`. The launcher runs the node-side probe
(``<node command> node pair-probe --peers A@ADDR,B@ADDR --port P ...``) once on
each node of a pair, as one job of its workload manager (an ``srun`` job step
allocation on Slurm, a Job on Kubernetes), waits for the jobs, and returns what
rank 0 printed. Judging the figures is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

PROBE_SUBCOMMAND = ("node", "pair-probe")
# Rendezvous ports: pair i of a round listens on DEFAULT_PORT + i on its first node.
# One port per pair keeps pairs apart even where several "nodes" share a host.
DEFAULT_PORT = 29500


@dataclass(frozen=True, slots=True)
class PairRun:
    """One pair of a round: the probe's rank 0 runs on ``nodes[0]`` and listens on ``port``."""

    nodes: tuple[str, str]
    port: int


@dataclass(frozen=True, slots=True)
class PairOutcome:
    """What one pair's job left behind."""

    nodes: tuple[str, str]
    job: str  # the workload manager's name for the job ("" if it never started)
    output: str  # what the probe printed (rank 0's result line among it); "" if nothing
    error: str = ""  # why the job did not finish cleanly ("" when it did)


def probe_argv(
    command: Sequence[str],
    run: PairRun,
    addresses: dict[str, str],
    extra: Sequence[str] = (),
) -> list[str]:
    """The node-side command line for one pair; ``addresses`` maps node name to address."""
    peers = ",".join(f"{n}@{addresses.get(n) or n}" for n in run.nodes)
    return [
        *command,
        *PROBE_SUBCOMMAND,
        "--peers",
        peers,
        "--port",
        str(run.port),
        *extra,
    ]


class PairLauncher(Protocol):
    """Runs pair jobs on one pool's workload manager; raises `scheduler.errors` types only
    when the workload manager cannot be asked at all (a pair that fails is an outcome)."""

    def run_pairs(
        self, pairs: Sequence[PairRun], extra_args: Sequence[str], timeout_seconds: float
    ) -> list[PairOutcome]:
        """Start every pair at once, wait up to ``timeout_seconds`` for all of them (queueing
        included), end what is still pending or running, and return one outcome per pair in
        the order given."""
        ...
