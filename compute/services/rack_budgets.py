"""Racks against their power budgets: what the control plane does about one over."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compute.runtime import Runtime


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: what could not be done, one line each
    (the next sweep tries again)."""
    return []
