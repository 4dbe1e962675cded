"""What the boards and rules read, and what computectl exports, to compare the two.

Metric names in a PromQL expression: tokens that are neither functions, keywords, label
names (in braces and in by/on/... lists), strings, numbers nor durations. The exported
names come from a real scrape (`exposition_names`), not from the source."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GRAFANA = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LISTS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\d[\w.]*(?:[eE][+-]?\d+)?|\S")
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "atan2", "start", "end"}
)
# Suffixes Prometheus stores beside a family's name, by the family's type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def metric_names(expr: str) -> set[str]:
    text = _GRAFANA.sub(" ", _STRINGS.sub(" ", expr))
    text = _RANGES.sub(" ", _MATCHERS.sub(" ", text))
    text = _LABEL_LISTS.sub(" ", text)
    tokens = _TOKEN.findall(text)
    names = set()
    for i, tok in enumerate(tokens):
        if not (tok[0].isalpha() or tok[0] in "_:") or tok.lower() in KEYWORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "(":
            continue  # a function or an aggregation
        names.add(tok)
    return names


def exposition_names(body: str) -> set[str]:
    """Every series name a scrape of ``body`` (Prometheus' text format) can store, families
    without samples included (their names are in the scrape, their series come later)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(body):
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names


def board_expressions(model: dict[str, object]) -> list[tuple[str, str]]:
    """(panel title, expression) for every query of a board's JSON model."""
    found: list[tuple[str, str]] = []
    panels = model.get("panels")
    for panel in panels if isinstance(panels, list) else []:
        for target in panel.get("targets") or []:
            if target.get("expr"):
                found.append((str(panel.get("title", "")), str(target["expr"])))
    return found
