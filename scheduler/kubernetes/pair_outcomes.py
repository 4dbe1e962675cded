"""What a pair's Job left behind: its state, its pods' termination messages and why it
failed (see scheduler.kubernetes.pairs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scheduler.kubernetes.objects import meta
from scheduler.kubernetes.pair_jobs import COMPLETE, CONTAINER, FAILED, GONE
from scheduler.pairs import PairOutcome, PairRun

_MAX_DETAIL = 200


def job_state(job: Mapping[str, Any] | None) -> tuple[str, str]:
    """(COMPLETE, FAILED or "" while it runs; GONE for no Job), and the ending condition's
    "reason: message"."""
    if job is None:
        return GONE, ""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in (COMPLETE, FAILED) and cond.get("status") == "True":
            why = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
            return str(cond["type"]), why
    return "", ""


def pair_outcome(
    run: PairRun,
    name: str,
    state: str,
    why: str,
    pods: Iterable[Mapping[str, Any]],
    timeout_seconds: float,
) -> PairOutcome:
    """What one pair's Job left: the pods' termination messages (the first node's first),
    and an error unless the Job completed. ``state`` is "" for a Job that did not finish
    in time."""
    ordered = sorted(pods, key=lambda p: (_node_of(p) != run.nodes[0], _node_of(p), _name(p)))
    messages = [m for m in (_message(p) for p in ordered) if m]
    output = "\n".join(messages)
    if state == COMPLETE:
        ran = sorted(_node_of(p) for p in ordered if _phase(p) == "Succeeded")
        if ran != sorted(run.nodes):
            # Anti-affinity only sees pods that have not ended: a pod that could not be
            # placed while its twin ran may land on the same node once the twin is done.
            where = ", ".join(ran) or "no node left to read"
            error = f"job completed, but its pods ran on {where}, not once on each node"
            return PairOutcome(run.nodes, name, output, error)
        return PairOutcome(run.nodes, name, output)
    if state == GONE:
        return PairOutcome(run.nodes, name, output, "job deleted before it finished")
    if state == FAILED:
        failed = [f for f in (_failure(p) for p in ordered) if f]
        detail = "; ".join(failed) or why or "no reason given"
        head = f"job failed ({why.split(':', 1)[0]})" if why and failed else "job failed"
        return PairOutcome(run.nodes, name, output, f"{head}: {detail}")
    return PairOutcome(
        run.nodes, name, output, f"not finished after {timeout_seconds:g} s ({_progress(ordered)})"
    )


def _name(pod: Mapping[str, Any]) -> str:
    return str(meta(pod).get("name", ""))


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _node_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _terminated(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            done = (cs.get("state") or {}).get("terminated")
            return done if isinstance(done, dict) else None
    return None


def _message(pod: Mapping[str, Any]) -> str:
    done = _terminated(pod)
    return str(done.get("message") or "").strip() if done else ""


def _failure(pod: Mapping[str, Any]) -> str:
    """ "pod X on node Y: <reason> exit N" for a pod that failed, "" otherwise."""
    where = f"pod {_name(pod)} on node {_node_of(pod) or '(none)'}"
    done = _terminated(pod)
    if done is not None and done.get("exitCode", 0) != 0:
        return f"{where}: {done.get('reason') or 'Error'} exit {done.get('exitCode')}"
    status = pod.get("status") or {}
    if status.get("phase") == "Failed" and done is None:
        # Never got to run its container: evicted, or the node went away.
        return f"{where}: {status.get('reason') or 'Failed'} {_one_line(status.get('message'))}"
    return ""


def _progress(pods: Sequence[Mapping[str, Any]]) -> str:
    """Where an unfinished Job's pods are: pending ones with the scheduler's reason."""
    if not pods:
        return "no pods created: see the job's events"
    pending, running, done = [], [], []
    for pod in pods:
        phase = _phase(pod)
        if phase == "Pending":
            pending.append(f"{_name(pod)}{_why_pending(pod)}")
        elif phase == "Running":
            running.append(f"{_name(pod)} on {_node_of(pod)}")
        else:
            done.append(f"{_name(pod)} on {_node_of(pod)} {phase.lower()}")
    parts = [
        f"pods {what}: {', '.join(names)}"
        for what, names in (("pending", pending), ("running", running), ("ended", done))
        if names
    ]
    return "; ".join(parts)


def _why_pending(pod: Mapping[str, Any]) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            text = _one_line(cond.get("message")) or str(cond.get("reason") or "")
            return f" [{text}]" if text else ""
    if _node_of(pod):
        return f" [on {_node_of(pod)}]"
    return ""


def _one_line(text: Any) -> str:
    words = " ".join(str(text or "").split())
    return words if len(words) <= _MAX_DETAIL else words[: _MAX_DETAIL - 3] + "..."
