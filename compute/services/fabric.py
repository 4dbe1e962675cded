"""The multi-node pair test: find the slow link among a pool's nodes.

The pool's nodes are paired along a ring (health.fabric), each round of pairs
runs as jobs of the pool's workload manager (scheduler.pairs), and the figures
are judged against the pool's own reference figure. Every node tested gets one
``nccl_pair`` result (what `nodes show` and the RMA report show), and the run
one audit entry. With ``drain``, suspect nodes are drained as an operator
would drain them (they stay out until an operator resumes them, through
burn-in); never more than the pool's drain budget allows. A suspect link drains
nothing (it is not a node's fault), it is reported; so is a pair that produced
no figure, which is no evidence against either node.

Before the verdict stands, every suspect (and inconclusive) node runs once more
with a node that passed every pair (health.fabric_recheck): slow again, it is
confirmed; fast, it is cleared and its slow pair is the link's or the partner's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from compute.clock import Clock
from compute.domain import AuditEntry, Node
from compute.errors import ComputeError, InvalidInput, NotFoundError
from compute.services.nodes import NodeService
from compute.store import Store
from health.burnin.pair import parse_result
from health.fabric import FabricReport, PairFigure, PairVerdict, judge, ring_rounds
from health.fabric_recheck import Outcome, Recheck, plan, rejudge
from health.inputs import MAX_REASON
from health.policy import Lifecycle, PolicyConfig, drain_budget
from health.result import CheckResult, Status, Suite
from scheduler.errors import SchedulerError
from scheduler.pairs import DEFAULT_PORT, PairLauncher, PairOutcome, PairRun

PAIR_CHECK = "nccl_pair"
PAIR_CHECK_VERSION = "1"


@dataclass(frozen=True)
class PairTestOptions:
    slow_ratio: float = 0.8
    floor_gbps: float | None = None
    nbytes: int | None = None
    timeout_seconds: float = 900.0  # a round, queueing included
    probe_timeout_seconds: float = 300.0  # a probe waiting for its peer and the collective
    port: int = DEFAULT_PORT
    device: str = "auto"
    recheck: bool = True  # re-pair suspects with a known-good partner before the verdict

    def probe_timeout(self) -> float:
        """The probe gives up before the round does, so its own one-line error is what the
        job leaves behind rather than a cancellation."""
        return max(1.0, min(self.probe_timeout_seconds, 0.9 * self.timeout_seconds))


@dataclass(frozen=True)
class PairTestRun:
    pool: str
    nodes: tuple[str, ...]
    rounds: int
    report: FabricReport
    drained: tuple[str, ...] = ()
    drain_errors: dict[str, str] = field(default_factory=dict)
    drain_refused: str = ""  # why --drain drained nothing (the pool's drain budget)
    rechecks: tuple[Recheck, ...] = ()  # each re-paired suspect's outcome
    recheck_rounds: int = 0


class FabricService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        nodes: NodeService,
        launchers: Mapping[str, PairLauncher],
        policy: PolicyConfig,
    ) -> None:
        self.store = store
        self.clock = clock
        self.nodes = nodes
        self.launchers = dict(launchers)
        self.policy = policy

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
        widest = max(len(r) for r in rounds)
        if options.port + widest - 1 > 65535:
            raise InvalidInput(
                f"ports {options.port}..{options.port + widest - 1} do not fit: "
                "lower pair_test.port"
            )
        extra = ["--timeout", f"{options.probe_timeout():g}", "--device", options.device]
        if options.nbytes:
            extra += ["--bytes", str(options.nbytes)]
        figures = _measure(launcher, rounds, options, extra)
        report = judge(figures, options.slow_ratio, options.floor_gbps)
        rechecks: tuple[Recheck, ...] = ()
        again = plan(report) if options.recheck else []
        if options.recheck and (report.suspect_nodes or report.inconclusive) and report.judged:
            report, rechecks = rejudge(report, _measure(launcher, again, options, extra))
        self._record(pool, chosen, report, actor, len(rounds), rechecks)
        drained: list[str] = []
        drain_errors: dict[str, str] = {}
        refused = ""
        if drain and report.suspect_nodes:
            room = self._drain_room(pool)
            if len(report.suspect_nodes) > room:
                refused = (
                    f"{len(report.suspect_nodes)} suspect nodes exceed the drain budget of "
                    f"pool {pool!r} ({room} more may go): none drained; look, then drain by hand"
                )
            else:
                for name, evidence in report.suspect_nodes.items():
                    try:
                        self.nodes.drain(name, _drain_reason(evidence), actor)
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
            refused,
            rechecks,
            len(again),
        )

    def _drain_room(self, pool: str) -> int:
        """How many more nodes the pool's drain budget lets out of service now."""
        members = self.store.nodes(pool=pool)
        out = sum(1 for n in members if n.state is not Lifecycle.IN_SERVICE)
        return max(0, drain_budget(len(members), self.policy) - out)

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
        self,
        pool: str,
        nodes: list[Node],
        report: FabricReport,
        actor: str,
        rounds: int,
        rechecks: tuple[Recheck, ...] = (),
    ) -> None:
        now = self.clock.now()
        results = []
        for node in nodes:
            mine = [v for v in report.pairs if node.name in v.nodes]
            if not mine:
                continue
            mine_again = [c for c in rechecks if node.name in (c.node, c.partner)]
            measured = [v.busbw_gbps for v in mine if v.busbw_gbps is not None]
            measured += [c.busbw_gbps for c in mine_again if c.busbw_gbps is not None]
            values: dict[str, float | int | str | bool] = {
                "pairs": len(mine) + sum(1 for c in mine_again if c.partner)
            }
            if measured:
                values["min_busbw_gbps"] = round(min(measured), 3)
            if report.reference_gbps is not None:
                values["reference_busbw_gbps"] = round(report.reference_gbps, 3)
            if node.name in report.suspect_nodes:
                status, evidence = Status.FAIL, report.suspect_nodes[node.name]
            elif any(v.slow or v.failed for v in mine):
                status = Status.WARN
                evidence = "; ".join(_note(v, node.name) for v in mine if v.slow or v.failed)
                if node.name in report.inconclusive:
                    evidence += " (no other partner clears it: node or link)"
                cleared = [c for c in mine_again if c.node == node.name]
                if cleared and cleared[0].outcome is Outcome.CLEARED:
                    evidence += f"; cleared by re-pairing: {_recheck_note(cleared[0])}"
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
                        "reference_busbw_gbps": report.reference_gbps,
                        "slow_pairs": [list(v.nodes) for v in report.pairs if v.slow],
                        "suspect_nodes": sorted(report.suspect_nodes),
                        "suspect_links": [list(link) for link in report.suspect_links],
                        "rechecks": [
                            {
                                "node": c.node,
                                "partner": c.partner,
                                "busbw_gbps": c.busbw_gbps,
                                "outcome": c.outcome.value,
                            }
                            for c in rechecks
                        ],
                    },
                )
            )


def _measure(
    launcher: PairLauncher,
    rounds: Sequence[Sequence[tuple[str, str]]],
    options: PairTestOptions,
    extra: Sequence[str],
) -> list[PairFigure]:
    """Every round's pairs through the launcher, one figure (or why none) per pair."""
    figures: list[PairFigure] = []
    for pairs in rounds:
        runs = [PairRun(p, options.port + i) for i, p in enumerate(pairs)]
        try:
            outcomes = launcher.run_pairs(runs, extra, options.timeout_seconds)
        except SchedulerError as exc:
            # Kept as this round's outcome: the rounds measured so far are not lost.
            outcomes = [PairOutcome(r.nodes, "", "", f"launcher failed: {exc}") for r in runs]
        for o in outcomes:
            busbw = _busbw(parse_result(o.output))
            error = o.error
            if busbw is None and not error:
                error = "the job finished without a result line"
            figures.append(PairFigure(o.nodes, busbw, error, o.job))
    return figures


def _drain_reason(evidence: str) -> str:
    """The evidence as a drain reason, cut to fit (the node's nccl_pair result keeps it whole)."""
    text = f"NCCL pair test: {evidence}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _recheck_note(c: Recheck) -> str:
    return f"{c.busbw_gbps:.1f} GB/s with known-good {c.partner}"


def _busbw(result: Mapping[str, object] | None) -> float | None:
    """The pair's bus bandwidth; a missing, malformed or zero figure is no figure."""
    if result is None:
        return None
    value = result.get("busbw_gbps")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _note(v: PairVerdict, node: str) -> str:
    partner = next(n for n in v.nodes if n != node)
    if v.failed:
        return f"no figure with {partner}: {v.error}"
    return f"slow with {partner} ({v.busbw_gbps:.1f} GB/s)"
