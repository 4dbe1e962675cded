"""The acceptance report page: whatever the node names, evidence and reasons hold (they come
from outside), the page shows them as text and runs nothing."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from compute.services.acceptance_html import render

HOSTILE = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"


def report(node: str, evidence: str, reason: str) -> dict[str, Any]:
    row = {
        "node": node, "verdict": "failed", "burn_in": "failed", "note": reason,
        "fabric": "suspect", "links": [[node, "gpu-002"]], "pool": "p", "state": "repair",
        "evidence": [{"check": "gemm_bf16", "status": "fail", "evidence": evidence,
                      "values": {"k<": evidence}}],
    }  # fmt: skip
    return {
        "name": "t", "state": "judged", "phase": "done", "final": True, "threshold": 0.95,
        "started_at": None, "judged_at": None, "total": 1, "accepted": 0, "failed": 1,
        "not_tested": 0, "share": 0.0, "live": False,
        "rma": [{"node": node, "pool": "p", "state": "repair", "reason": reason,
                 "suspect_gpus": [1], "serials": [evidence], "xid_codes": [], "lemon": True,
                 "checks": ["gemm_bf16"]}],
        "suspect_nodes": {node: evidence}, "suspect_links": [[node, "gpu-002"]],
        "fabric": [{"pool": "p", "nodes": [node], "reference_gbps": 1.0, "note": reason}],
        "nodes": [row],
    }  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        assert not any(name.startswith("on") for name, _ in attrs)


def test_a_hostile_name_is_shown_escaped() -> None:
    page = render(report(HOSTILE, HOSTILE, HOSTILE))
    assert "<script" not in page and "<img" not in page
    assert escape(HOSTILE, quote=True) in page


@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60))
def test_no_outside_text_makes_markup(node: str, evidence: str, reason: str) -> None:
    page = render(report(node, evidence, reason))
    tags = _Tags()
    tags.feed(page)
    ours = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table",
            "thead", "tbody", "tr", "th", "td", "b", "code", "small", "br", "div", "span"}  # fmt: skip
    assert tags.tags <= ours
    assert escape(node, quote=True) in page
