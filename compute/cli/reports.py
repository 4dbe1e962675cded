"""Reports printed as text from their views (the same text on the data directory and through
a server)."""

from __future__ import annotations

from typing import Any

from compute.cli.output import stamp


def rma_text(r: dict[str, Any]) -> str:
    """rma_report_view as the text an RMA ticket takes (RmaReport.as_text, from the view)."""
    suspect = r["suspect_gpus"]
    count = r["gpu_count"]
    lines = [
        f"RMA evidence for {r['node']} ({count} x {r['gpu_model']}, pool {r['pool']}, "
        f"rack {r['rack']})",
        f"state: {r['state']} since {stamp(r['state_since'])} UTC",
        f"reason: {r['drain_reason'] or '-'}",
        f"suspect GPUs: {', '.join(map(str, suspect)) or 'none named'}",
        f"XID codes seen: {', '.join(map(str, r['xid_codes'])) or 'none'}",
    ]
    if r.get("lemon"):
        lemon = r["lemon"]
        lines.append(f"LEMON since {stamp(lemon['at'])} UTC: {lemon['reason']}")
    lines += [
        "",
        "GPUs (index, serial, UUID):",
    ]
    lines += [
        f"  {'*' if g['index'] in suspect else ' '} {g['index']}  {g['serial'] or '':<16} "
        f"{g['uuid']}"
        for g in r["gpus"]
    ]
    lines += ["", "Failures and warnings (newest first):"]
    lines += [
        f"  {stamp(x['at'])}  {x['status']:<4} {x['check']:<15} {x['evidence']}"
        for x in r["failures"]
    ] or ["  none recorded"]
    lines += ["", "Latest burn-in figures:"]
    for x in r["burn_in"]:
        figures = ", ".join(f"{k}={v}" for k, v in x["values"].items())
        lines.append(f"  {x['status']:<4} {x['check']:<15} {figures}")
    if not r["burn_in"]:
        lines.append("  no burn-in recorded")
    lines += ["", "History:"]
    lines += [
        f"  {stamp(e['at'])}  {e['kind']:<16} {e['reason']}  ({e['actor']})" for e in r["history"]
    ]
    return "\n".join(lines)
