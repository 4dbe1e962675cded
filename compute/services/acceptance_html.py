"""A tranche's report as one self-contained HTML page (no script, no outside resource).

Node names, check evidence and reasons come from outside (hostlists, nodes' own reports,
workload managers' answers): every one is escaped where it is written, and the page's
policy forbids scripts should one slip through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.accepted{color:#176317}.failed{color:#a11}.pending,.not_tested{color:#666}
.live{background:#e6f4e6}.judged,.failed-state{background:#fbeaea}code{white-space:pre-wrap}
"""


def _t(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """``rows``: cells already escaped (they may hold markup of ours)."""
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f"<th>{_t(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _evidence(items: Sequence[dict[str, Any]]) -> str:
    parts = []
    for e in items:
        figures = ", ".join(f"{k}={v}" for k, v in sorted(e.get("values", {}).items()))
        parts.append(
            f"<div><b>{_t(e.get('check'))}</b> {_t(e.get('status'))}: "
            f"<code>{_t(e.get('evidence'))}</code>"
            + (f" <small>{_t(figures)}</small>" if figures else "")
            + "</div>"
        )
    return "".join(parts)


def render(report: dict[str, Any]) -> str:
    r = report
    state = str(r.get("state", ""))
    verdict = (
        f"live: {r['accepted']} of {r['total']} accepted ({float(r['share']):.1%}), "
        f"threshold {float(r['threshold']):.1%}"
        if r.get("live")
        else f"{state}: {r['accepted']} of {r['total']} accepted ({float(r['share']):.1%}), "
        f"threshold {float(r['threshold']):.1%}"
    )
    body = [
        f"<h1>Tranche {_t(r['name'])}</h1>",
        f'<p class="{"live" if r.get("live") else "failed-state"}" id="verdict">{_t(verdict)}</p>',
        f"<p>started {_t(r.get('started_at'))}, judged {_t(r.get('judged_at'))}; "
        f"failed {_t(r['failed'])}, not tested {_t(r['not_tested'])}</p>",
        "<h2>RMA list</h2>",
        _table(
            ["node", "pool", "state", "suspect GPUs", "serials", "XIDs", "checks", "reason"],
            (
                [
                    _t(x["node"]),
                    _t(x["pool"]),
                    _t(x["state"]),
                    _t(", ".join(map(str, x["suspect_gpus"])) or "none named"),
                    _t(", ".join(x["serials"])),
                    _t(", ".join(map(str, x["xid_codes"]))),
                    _t(", ".join(x["checks"])),
                    _t(x["reason"]) + (" <b>(lemon)</b>" if x.get("lemon") else ""),
                ]
                for x in r["rma"]
            ),
            "rma",
        )
        if r["rma"]
        else "<p>none</p>",
        "<h2>Fabric suspects</h2>",
        _table(
            ["node", "evidence"],
            ([_t(n), _t(e)] for n, e in r["suspect_nodes"].items()),
            "suspect-nodes",
        )
        if r["suspect_nodes"]
        else "<p>no suspect node</p>",
        _table(
            ["link", "between"],
            ([_t(" - ".join(link)), _t(", ".join(link))] for link in r["suspect_links"]),
            "suspect-links",
        )
        if r["suspect_links"]
        else "<p>no suspect link</p>",
        _table(
            ["pool", "nodes", "reference GB/s", "note"],
            (
                [_t(f["pool"]), _t(len(f["nodes"])), _t(f["reference_gbps"]), _t(f["note"])]
                for f in r["fabric"]
            ),
            "fabric",
        ),
        "<h2>Nodes</h2>",
        _table(
            ["node", "verdict", "burn-in", "fabric", "state", "evidence"],
            (
                [
                    _t(n["node"]),
                    f'<span class="{_t(n["verdict"])}">{_t(n["verdict"])}</span>',
                    _t(n["burn_in"]) + (f"<br><small>{_t(n['note'])}</small>" if n["note"] else ""),
                    _t(n["fabric"])
                    + "".join(f"<br><small>link {_t(' - '.join(k))}</small>" for k in n["links"]),
                    _t(n["state"]),
                    _evidence(n["evidence"]),
                ]
                for n in r["nodes"]
            ),
            "nodes",
        ),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>Tranche {_t(r['name'])}: acceptance report</title>"
        f"<style>{_STYLE}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
