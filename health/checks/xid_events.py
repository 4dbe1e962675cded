"""XID errors reported by the driver since the last check."""

from __future__ import annotations

from health.checks.base import CheckContext, verdict
from health.result import CheckResult, Status, Suite
from health.xid import Action, classify


class XidCheck:
    name = "xid"
    version = "1"
    suite = Suite.PASSIVE

    def run(self, ctx: CheckContext) -> CheckResult:
        snap = ctx.snapshot
        if snap.xid_source_error is not None:
            return verdict(
                self, ctx, Status.WARN, f"kernel log unreadable: {snap.xid_source_error}"
            )
        if not snap.xid_events:
            return verdict(self, ctx, Status.PASS, values={"xid_events": 0})
        worst = Status.WARN
        fatal = False
        parts: list[str] = []
        gpus: set[int] = set()
        codes: list[int] = []
        for ev in snap.xid_events:
            cls = classify(ev.code)
            codes.append(ev.code)
            if ev.gpu_index is not None:
                gpus.add(ev.gpu_index)
            where = f"GPU {ev.gpu_index}" if ev.gpu_index is not None else ev.pci_bus_id
            if cls is None:
                parts.append(f"XID {ev.code} (unknown code) on {where}")
                continue
            parts.append(f"XID {ev.code} ({cls.name}, {cls.action.value}) on {where}")
            if cls.fatal:
                fatal = True
                worst = Status.FAIL
            elif cls.action in (Action.RESET, Action.RMA, Action.DRAIN):
                worst = Status.FAIL
        evidence = "; ".join(dict.fromkeys(parts))
        return verdict(
            self,
            ctx,
            worst,
            evidence,
            fatal=fatal,
            values={
                "xid_events": len(snap.xid_events),
                "xid_codes": ",".join(str(c) for c in sorted(set(codes))),
            },
            gpus=tuple(sorted(gpus)),
        )
