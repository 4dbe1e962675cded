"""Energy and GPU-hours per tenant, pool and GPU model, accrued from what was measured."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compute.runtime import Runtime


def after_sweep(rt: Runtime) -> list[str]:
    """After each sweep, by the acting control plane: what could not be done, one line each
    (the next sweep tries again)."""
    return []
