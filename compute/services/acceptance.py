"""Tranche acceptance: bringing a whole tranche of new capacity into service.

An operator names the tranche (``acceptance create NAME --nodes HOSTLIST|--pool P``) and
starts its run (``acceptance run NAME``), which only marks it running and returns. The
acting control plane advances every running tranche after each sweep (``after_sweep``):

1. burn-in: each node is put through the burn-in suite by the remediator, as ``nodes
   resume`` does (compute/services/acceptance_steps.py); the policy then does what it does
   with any burn-in: a node that passes goes back into service, one that fails (after its
   retry) goes to repair;
2. the pair test over the nodes that passed, suspects re-paired with known-good partners
   (compute/services/fabric.py); a node slow with every partner goes to repair too;
3. the verdict (compute/services/acceptance_report.py): per node pass/fail with evidence,
   the RMA list, the fabric's suspect nodes and links, the share accepted: the tranche is
   ``judged``; at the next sweep, its nodes placed (the accepted in service, the rest in
   repair), it is ``live`` when that share reaches its threshold, ``failed`` otherwise (run
   it again once its failed nodes are back from repair).

Each step is written only if the tranche is still as the step read it (compute/store/
acceptance.py): a second control plane or a second sweep never does a step twice.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from compute.errors import ComputeError, InvalidInput, NotFoundError, RefusedError
from compute.services.acceptance_report import build_report
from compute.services.acceptance_steps import burn_in_step, nodes_of, pair_test_step
from compute.services.batch import node_names
from compute.store import Store
from compute.store import acceptance as kept
from compute.store.acceptance import Tranche
from health.policy import Lifecycle

if TYPE_CHECKING:
    from compute.clock import Clock
    from compute.runtime import Runtime

log = logging.getLogger("computectl")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CREATED, RUNNING, JUDGED, LIVE, FAILED = "created", "running", "judged", "live", "failed"
STATES = (CREATED, RUNNING, JUDGED, LIVE, FAILED)
BURN_IN, PAIR_TEST, DONE = "burn_in", "pair_test", "done"
MAX_NODES = 10_000


def valid_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"tranche name {name[:80]!r}: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def valid_threshold(value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= 1):
        raise InvalidInput("threshold: a share above 0 and at most 1 (0.95 is 95 %)")
    return float(value)


def create(
    store: Store,
    clock: Clock,
    name: str,
    actor: str,
    nodes: Sequence[str] = (),
    pool: str | None = None,
    threshold: float = 0.95,
) -> Tranche:
    """A new tranche of ``nodes`` (names or Slurm hostlists) or of every node of ``pool``
    that is not retired."""
    valid_name(name)
    threshold = valid_threshold(threshold)
    if bool(nodes) == (pool is not None):
        raise InvalidInput("name the tranche's nodes (--nodes HOSTLIST) or its pool (--pool P)")
    if pool is not None:
        if pool not in {p.name for p in store.pools()}:
            raise NotFoundError(f"unknown pool {pool!r}")
        names = [n.name for n in store.nodes(pool=pool) if n.state is not Lifecycle.RETIRED]
        if not names:
            raise InvalidInput(f"pool {pool!r} has no node to accept")
    else:
        names = node_names(nodes)
        unknown = [n for n in names if store.node(n) is None]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise NotFoundError(f"unknown nodes: {', '.join(unknown[:5])}{more}")
    if len(names) > MAX_NODES:
        raise InvalidInput(f"a tranche has at most {MAX_NODES} nodes; this one {len(names)}")
    tranche = Tranche(
        name=name,
        nodes=tuple(names),
        threshold=threshold,
        state=CREATED,
        phase="",
        created_at=clock.now(),
        created_by=actor,
    )
    if not kept.create(store, tranche):
        raise RefusedError(f"tranche {name!r} exists")
    return tranche


def get(store: Store, name: str) -> Tranche:
    tranche = kept.get(store, valid_name(name))
    if tranche is None:
        raise NotFoundError(f"unknown tranche {name!r}")
    return tranche


def run(store: Store, clock: Clock, name: str) -> Tranche:
    """Marks the tranche running from its first step; the acting control plane carries it
    out after its sweeps. A tranche already judged runs again from the start (its nodes back
    from repair are tested anew)."""
    tranche = get(store, name)
    if tranche.state == RUNNING:
        raise RefusedError(f"tranche {name!r} is running already (phase {tranche.phase})")
    started = replace(
        tranche,
        state=RUNNING,
        phase=BURN_IN,
        started_at=clock.now(),
        judged_at=None,
        progress={},
        report=None,
        error="",
    )
    if not kept.save(store, tranche, started):
        raise RefusedError(f"tranche {name!r} changed while it was started; try again")
    return get(store, name)


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: one step of every running tranche;
    what could not be done, one line each (one tranche's trouble stops none of the others)."""
    if not rt.may_act():
        return []
    errors: list[str] = []
    for tranche in kept.listed(rt.store, (RUNNING, JUDGED)):
        try:
            advance(rt, tranche)
        except ComputeError as exc:
            errors.append(f"acceptance {tranche.name}: {exc}")
        except Exception as exc:  # a tranche's bug must not stop the sweep's other hooks
            log.exception("acceptance %s: step failed", tranche.name)
            errors.append(f"acceptance {tranche.name}: {type(exc).__name__}: {exc}")
    return errors


def advance(rt: Runtime, tranche: Tranche) -> Tranche:
    """One step of a running tranche, written only if nobody moved it since it was read."""
    now = rt.clock.now()
    if tranche.phase == BURN_IN:
        progress, finished = burn_in_step(rt, tranche, now)
        new = replace(tranche, progress=progress, phase=PAIR_TEST if finished else BURN_IN)
    elif tranche.phase == PAIR_TEST:
        progress = pair_test_step(rt, tranche, now)
        new = replace(tranche, progress=progress, phase=DONE)
    elif tranche.state == RUNNING:
        report = build_report(rt.store, tranche, now)
        report["state"] = JUDGED
        new = replace(tranche, state=JUDGED, judged_at=now, report=report)
    else:
        new = _placed(rt, tranche)
    if new != tranche and not kept.save(rt.store, tranche, new):
        log.info("acceptance %s: moved by someone else meanwhile; read again next sweep", new.name)
        return tranche
    return new


def _placed(rt: Runtime, t: Tranche) -> Tranche:
    """A judged tranche once its nodes are where the verdict put them (the accepted in
    service, the failed in repair, by the policy's own path): live when the accepted share
    reaches the threshold, failed otherwise. An accepted node out of service again since
    (a fault after the verdict) is said in the report; it does not undo the verdict."""
    report = dict(t.report or {})
    out = []
    for row in report.get("nodes", []):
        node = rt.store.node(row["node"])
        if row["verdict"] == "accepted" and (
            node is None or node.state is not Lifecycle.IN_SERVICE
        ):
            out.append(row["node"])
    report["accepted_out_of_service"] = out
    report["state"] = LIVE if report.get("live") else FAILED
    return replace(t, state=report["state"], report=report)


def view(t: Tranche) -> dict[str, Any]:
    """What ``acceptance status`` shows: where the run stands, per node."""
    counts: dict[str, int] = {}
    progress = nodes_of(t.progress)
    for name in t.nodes:
        outcome = str(progress.get(name, {}).get("burn_in", "waiting"))
        counts[outcome] = counts.get(outcome, 0) + 1
    report = t.report or {}
    return {
        "name": t.name,
        "state": t.state,
        "phase": t.phase,
        "threshold": t.threshold,
        "nodes": len(t.nodes),
        "created_at": t.created_at,
        "created_by": t.created_by,
        "started_at": t.started_at,
        "judged_at": t.judged_at,
        "burn_in": dict(sorted(counts.items())),
        "accepted": report.get("accepted"),
        "share": report.get("share"),
        "error": t.error,
    }


def listing(store: Store) -> dict[str, Any]:
    return {"tranches": [view(t) for t in kept.listed(store)]}


def report(store: Store, name: str) -> dict[str, Any]:
    """The tranche's report: the verdict once judged; before that, what is known so far."""
    tranche = get(store, name)
    if tranche.report is not None:
        return tranche.report
    if tranche.state == CREATED:
        raise RefusedError(f"tranche {name!r} has not run yet: `computectl acceptance run {name}`")
    return build_report(store, tranche, None)
