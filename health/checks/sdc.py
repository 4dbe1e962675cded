"""Silent data corruption: the known-answer computation's checksum, compared three ways.

Every GPU of the node runs the same seeded GEMM chain (health/burnin/sdc.py) and reports
the sha256 of its output bits. Then:

1. **repeats**: one GPU's repeats must agree (a GPU that answers differently twice is
   unstable);
2. **across the node's GPUs**: GPUs of one model must be bitwise equal; the odd one out is
   the suspect (no majority: every GPU is);
3. **across runs**: the node check's state keeps the last passing checksum per software
   stack; this run must repeat it;
4. **against the fleet**: the checksum most passing nodes of this model and stack reported
   (the control plane's /api/v1/sdc/reference), where there is one.

A comparison with nothing to compare against (one GPU, first run on this stack, no fleet
reference yet) is skipped and said so. Any mismatch is fatal: a GPU that computes wrong
bits without an error corrupts its tenants' results silently. The evidence (which
comparison, which GPU, expected and got) is in the result's values.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from health.checks.base import CheckContext, gpu_list, verdict
from health.inputs import MAX_EVIDENCE
from health.probe import ProbeError, SdcRun
from health.result import CheckResult, Status, Suite, Value

CHECK_NAME = "sdc"
STACK_KEY_CHARS = 16
MAX_SUSPECT_CHECKSUMS = 16


@dataclass(frozen=True, slots=True)
class SdcReference:
    """The fleet's answer for one (model, stack): its checksum and how many nodes agree."""

    checksum: str
    nodes: int


# (GPU model, stack key) -> the fleet's reference; None: there is none yet. It raises
# LookupError when the control plane could not be asked (the comparison is then skipped).
ReferenceLookup = Callable[[str, str], SdcReference | None]


def stack_key(text: str) -> str:
    """A short, fixed-size key for the stack's description (what the fleet groups by)."""
    return hashlib.sha256(text.encode()).hexdigest()[:STACK_KEY_CHARS]


def short(checksum: str) -> str:
    return checksum[:12]


class SdcCheck:
    """``known``: the last passing checksum per stack key on this node (the node check's
    state); ``reference``: asks the control plane for the fleet's."""

    name = CHECK_NAME
    version = "1"
    suite = Suite.BURNIN

    def __init__(
        self,
        known: Mapping[str, str] | None = None,
        reference: ReferenceLookup | None = None,
    ) -> None:
        self.known = dict(known or {})
        self.reference = reference

    def run(self, ctx: CheckContext) -> CheckResult:
        probe = ctx.probe
        if probe is None:
            return verdict(self, ctx, Status.WARN, "skipped: no burn-in probe on this node")
        gpus = ctx.snapshot.gpus
        if not gpus:
            return verdict(self, ctx, Status.WARN, "skipped: no GPUs to run on")
        try:
            runs = {g.index: probe.sdc_run(g.index) for g in gpus}
        except ProbeError as exc:
            # A kernel that cannot run is the GEMM check's failure; here it is no evidence.
            return verdict(self, ctx, Status.WARN, f"skipped: the SDC kernel did not run: {exc}")
        first = runs[gpus[0].index]
        model = gpus[0].model or ctx.expectation.gpu_model
        text = (
            f"{first.stack}; model {model}; driver {ctx.snapshot.driver_version or '-'}; "
            f"kernel {first.kernel}"
        )
        key = stack_key(text)
        values: dict[str, Value] = {
            "stack": key,
            "stack_text": text[:256],
            "model": model,
            "kernel": first.kernel,
            "gpus_checked": len(runs),
            "seconds": round(sum(r.seconds for r in runs.values()), 3),
        }
        return _judge(self, ctx, runs, {g.index: g.model for g in gpus}, model, key, values)


def _judge(
    check: SdcCheck,
    ctx: CheckContext,
    runs: Mapping[int, SdcRun],
    models: Mapping[int, str],
    model: str,
    key: str,
    values: dict[str, Value],
) -> CheckResult:
    problems: list[str] = []
    suspects: set[int] = set()

    def mismatch(comparison: str, gpu: int | None, expected: str, got: str, why: str) -> None:
        # The first mismatch's evidence goes in the values; each one in the text.
        if "comparison" not in values:
            values.update(comparison=comparison, expected=expected, got=got)
            if gpu is not None:
                values["gpu"] = gpu
        problems.append(why)

    unstable = [g for g, r in sorted(runs.items()) if len(set(r.checksums)) > 1]
    for g in unstable:
        seen = runs[g].checksums
        odd = next(s for s in seen if s != seen[0])
        mismatch("repeats", g, seen[0], odd, f"GPU {g} gave {len(set(seen))} different "
                 f"answers in {len(seen)} runs ({short(seen[0])} vs {short(odd)})")  # fmt: skip
    suspects.update(unstable)
    sums = {g: r.checksums[0] for g, r in runs.items()}

    consensus = _across_gpus(sums, models, values, mismatch, suspects)
    # A result holds 64 values at most (health/inputs.py): the first suspects' checksums.
    for g in sorted(suspects)[:MAX_SUSPECT_CHECKSUMS]:
        values[f"gpu{g}_checksum"] = sums[g]
    if consensus is not None:
        values["checksum"] = consensus
        _previous(check, key, consensus, values, mismatch, suspects, sums)
        _fleet(check, model, key, sums, values, mismatch, suspects)
    else:
        values["previous_run"] = values["fleet_reference"] = "skipped: no node consensus"
    if problems:
        evidence = "; ".join(problems)
        if len(evidence) > MAX_EVIDENCE:  # what a posted result may carry
            evidence = evidence[: MAX_EVIDENCE - 1] + "…"
        return verdict(
            check,
            ctx,
            Status.FAIL,
            evidence,
            fatal=True,
            values=values,
            gpus=tuple(sorted(suspects)),
        )
    return verdict(check, ctx, Status.PASS, f"all {len(runs)} GPU(s) agree", values=values)


Mismatch = Callable[[str, int | None, str, str, str], None]


def _across_gpus(
    sums: Mapping[int, str],
    models: Mapping[int, str],
    values: dict[str, Value],
    mismatch: Mismatch,
    suspects: set[int],
) -> str | None:
    """The node's answer (the checksum of the majority of GPUs of its first model), or
    None where there is no majority; odd GPUs of each model are suspects."""
    if len(sums) == 1:
        values["cross_gpu"] = "skipped: one GPU"
        return next(iter(sums.values()))
    answer: str | None = None
    seen_models: list[str] = []
    for model in models.values():
        if model not in seen_models:
            seen_models.append(model)
    for model in seen_models:
        group = {g: s for g, s in sums.items() if models[g] == model}
        counts = Counter(group.values()).most_common()
        top, n = counts[0]
        tie = len(counts) > 1 and counts[1][1] == n
        if len(counts) == 1:
            majority: str | None = top
        elif tie:
            majority = None
            bad = sorted(group)
            mismatch("cross_gpu", None, "", "", f"GPUs {gpu_list(bad)} ({model}) disagree "
                     f"with no majority ({len(counts)} different answers)")  # fmt: skip
            suspects.update(bad)
        else:
            majority = top
            for g in sorted(g for g, s in group.items() if s != top):
                mismatch("cross_gpu", g, top, group[g], f"GPU {g} answered {short(group[g])}, "
                         f"the other {n} {model} GPU(s) {short(top)}")  # fmt: skip
                suspects.add(g)
        if answer is None and model == seen_models[0]:
            answer = majority
    values["cross_gpu"] = "mismatch" if suspects else "equal"
    return answer


def _previous(
    check: SdcCheck,
    key: str,
    consensus: str,
    values: dict[str, Value],
    mismatch: Mismatch,
    suspects: set[int],
    sums: Mapping[int, str],
) -> None:
    before = check.known.get(key)
    if before is None:
        values["previous_run"] = "skipped: first run on this stack"
    elif before == consensus:
        values["previous_run"] = "matched"
    else:
        values["previous_run"] = "mismatch"
        values["previous_checksum"] = before
        mismatch("previous_run", None, before, consensus, f"the node answered "
                 f"{short(consensus)}, its last run on this stack {short(before)}")  # fmt: skip
        suspects.update(g for g, s in sums.items() if s != before)


def _fleet(
    check: SdcCheck,
    model: str,
    key: str,
    sums: Mapping[int, str],
    values: dict[str, Value],
    mismatch: Mismatch,
    suspects: set[int],
) -> None:
    if check.reference is None:
        values["fleet_reference"] = "skipped: not asked (no control plane)"
        return
    try:
        ref = check.reference(model, key)
    except LookupError as exc:
        values["fleet_reference"] = f"skipped: could not be read: {exc}"[:256]
        return
    if ref is None:
        values["fleet_reference"] = "skipped: no reference yet for this model and stack"
        return
    values["reference_checksum"] = ref.checksum
    values["reference_nodes"] = ref.nodes
    off = sorted(g for g, s in sums.items() if s != ref.checksum)
    if not off:
        values["fleet_reference"] = "matched"
        return
    values["fleet_reference"] = "mismatch"
    got = sums[off[0]]
    mismatch("fleet_reference", off[0], ref.checksum, got, f"GPU(s) {gpu_list(off)} answered "
             f"{short(got)}, the fleet's {model} reference ({ref.nodes} nodes) "
             f"{short(ref.checksum)}")  # fmt: skip
    suspects.update(off)
