"""The multi-node pair test: find the slow link among a pool's nodes.

The pool's nodes are paired along a ring (health.fabric), each round of pairs
runs as jobs of the pool's workload manager (scheduler.pairs), and the figures
are judged against the pool's own median. Every node tested gets one
``nccl_pair`` result (what `nodes show` and the RMA report show), and the run
one audit entry. With ``drain``, suspect nodes are drained as an operator
would drain them, so they come back only through burn-in; a suspect link
drains nothing (it is not a node's fault), it is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from compute.clock import Clock
from compute.domain import AuditEntry, Node
from compute.errors import BackendError, ComputeError, InvalidInput, NotFoundError
from compute.services.nodes import NodeService
from compute.store import Store
from health.burnin.pair import parse_result
from health.fabric import FabricReport, PairFigure, judge, ring_rounds
from health.policy import Lifecycle
from health.result import CheckResult, Status, Suite
from scheduler.errors import SchedulerError
from scheduler.pairs import DEFAULT_PORT, PairLauncher, PairRun

PAIR_CHECK = "nccl_pair"
PAIR_CHECK_VERSION = "1"


@dataclass(frozen=True)
class PairTestOptions:
    slow_ratio: float = 0.8
    floor_gbps: float | None = None
    nbytes: int | None = None
    timeout_seconds: float = 900.0
    port: int = DEFAULT_PORT
    device: str = "auto"


@dataclass(frozen=True)
class PairTestRun:
    pool: str
    nodes: tuple[str, ...]
    rounds: int
    report: FabricReport
    drained: tuple[str, ...] = ()
    drain_errors: dict[str, str] = field(default_factory=dict)


class FabricService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        nodes: NodeService,
        launchers: Mapping[str, PairLauncher],
    ) -> None:
        self.store = store
        self.clock = clock
        self.nodes = nodes
        self.launchers = dict(launchers)

    def pair_test(
        self,
        pool: str,
        options: PairTestOptions,
        actor: str,
        names: Sequence[str] = (),
        drain: bool = False,
    ) -> PairTestRun:
        launcher = self._launcher(pool)
        chosen = self._nodes(pool, names)
        rounds = ring_rounds([n.name for n in chosen])
        extra = ["--timeout", f"{options.timeout_seconds:g}", "--device", options.device]
        if options.nbytes:
            extra += ["--bytes", str(options.nbytes)]
        figures: list[PairFigure] = []
        for pairs in rounds:
            runs = [PairRun(p, options.port + i) for i, p in enumerate(pairs)]
            try:
                outcomes = launcher.run_pairs(runs, extra, options.timeout_seconds)
            except SchedulerError as exc:
                raise BackendError(f"pair test on pool {pool!r}: {exc}") from exc
            for o in outcomes:
                result = parse_result(o.output)
                busbw = _busbw(result)
                error = o.error
                if busbw is None and not error:
                    error = "the job finished without a result line"
                figures.append(PairFigure(o.nodes, busbw, error, o.job))
        report = judge(figures, options.slow_ratio, options.floor_gbps)
        self._record(pool, chosen, report, actor, len(rounds))
        drained: list[str] = []
        drain_errors: dict[str, str] = {}
        if drain:
            for name, evidence in report.suspect_nodes.items():
                try:
                    self.nodes.drain(name, f"NCCL pair test: {evidence}", actor)
                    drained.append(name)
                except ComputeError as exc:
                    drain_errors[name] = str(exc)
        return PairTestRun(
            pool,
            tuple(n.name for n in chosen),
            len(rounds),
            report,
            tuple(drained),
            drain_errors,
        )

    def _launcher(self, pool: str) -> PairLauncher:
        if pool not in {p.name for p in self.store.pools()}:
            raise NotFoundError(f"unknown pool {pool!r}")
        launcher = self.launchers.get(pool)
        if launcher is None:
            raise InvalidInput(
                f"pool {pool!r} has no pair-test launcher: Slurm pools have one, Kubernetes "
                "pools once kubernetes.burn_in_image names the node-check image"
            )
        return launcher

    def _nodes(self, pool: str, names: Sequence[str]) -> list[Node]:
        if names:
            chosen = []
            for name in dict.fromkeys(names):
                node = self.store.node(name)
                if node is None:
                    raise NotFoundError(f"unknown node {name!r}")
                if node.pool != pool:
                    raise InvalidInput(f"{name} is in pool {node.pool!r}, not {pool!r}")
                chosen.append(node)
        else:
            # In-service nodes only: a drained node is not computectl's to hand out.
            chosen = self.store.nodes(pool=pool, state=Lifecycle.IN_SERVICE)
        if len(chosen) < 2:
            raise InvalidInput(
                f"a pair test needs at least two nodes; pool {pool!r} offers {len(chosen)}"
            )
        return chosen

    def _record(
        self, pool: str, nodes: list[Node], report: FabricReport, actor: str, rounds: int
    ) -> None:
        now = self.clock.now()
        results = []
        for node in nodes:
            mine = [v for v in report.pairs if node.name in v.nodes]
            if not mine:
                continue
            measured = [v.busbw_gbps for v in mine if v.busbw_gbps is not None]
            values: dict[str, float | int | str | bool] = {"pairs": len(mine)}
            if measured:
                values["min_busbw_gbps"] = round(min(measured), 3)
            if report.reference_gbps is not None:
                values["median_busbw_gbps"] = round(report.reference_gbps, 3)
            if node.name in report.suspect_nodes:
                status, evidence = Status.FAIL, report.suspect_nodes[node.name]
            elif any(v.slow for v in mine):
                slow = [v for v in mine if v.slow]
                status = Status.WARN
                evidence = "; ".join(
                    f"slow pair with {next(n for n in v.nodes if n != node.name)}"
                    + (f" ({v.busbw_gbps:.1f} GB/s)" if v.busbw_gbps is not None else "")
                    + (f": {v.error}" if v.error else "")
                    for v in slow
                )
                if node.name in report.inconclusive:
                    evidence += " (no second partner to tell node from link)"
            else:
                status, evidence = Status.PASS, ""
            results.append(
                CheckResult(
                    node=node.name,
                    check=PAIR_CHECK,
                    version=PAIR_CHECK_VERSION,
                    status=status,
                    at=now,
                    suite=Suite.BURNIN,
                    evidence=evidence,
                    values=values,
                )
            )
        with self.store.transaction() as tx:
            tx.add_results(results)
            tx.add_audit(
                AuditEntry(
                    at=now,
                    actor=actor,
                    action="pool.pair_test",
                    target=pool,
                    detail={
                        "nodes": len(nodes),
                        "pairs": len(report.pairs),
                        "rounds": rounds,
                        "median_busbw_gbps": report.reference_gbps,
                        "slow_pairs": [list(v.nodes) for v in report.pairs if v.slow],
                        "suspect_nodes": sorted(report.suspect_nodes),
                        "suspect_links": [list(link) for link in report.suspect_links],
                    },
                )
            )


def _busbw(result: Mapping[str, object] | None) -> float | None:
    if result is None:
        return None
    value = result.get("busbw_gbps")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
