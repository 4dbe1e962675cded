"""Drain reasons computectl owns. It only ever resumes or changes a drain whose
reason it wrote, so the prefix is the whole ownership test."""

from __future__ import annotations

OWNED_PREFIX = "computectl:"
# Slurm keeps reasons whole, but they are read in `sinfo -R` columns and
# Kubernetes annotations: keep them to one readable line.
MAX_REASON_LENGTH = 200


def owned_reason(kind: str, detail: str) -> str:
    detail = " ".join(detail.split())
    text = f"{OWNED_PREFIX} {kind}: {detail}" if detail else f"{OWNED_PREFIX} {kind}"
    if len(text) > MAX_REASON_LENGTH:
        text = text[: MAX_REASON_LENGTH - 1] + "\u2026"
    return text


def is_owned(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(OWNED_PREFIX)
