"""What to tell of an action on many tenants (standard library only: the remote CLI uses it)."""

from __future__ import annotations

from collections.abc import Mapping

from compute.errors import ComputeError, PartialError


def batch_error(done: int, refused: Mapping[str, ComputeError], verb: str) -> ComputeError | None:
    """None if no tenant was refused; with ``done`` tenants done as well, a partial (exit 4);
    with none, the one refusal as it was, or all of them in one line with the gravest
    one's kind (2 refused or invalid, 3 a backend failed)."""
    if not refused:
        return None
    if done:
        names = ", ".join(refused)
        return PartialError(f"{len(refused)} of {done + len(refused)} tenants not {verb}: {names}")
    if len(refused) == 1:
        return next(iter(refused.values()))
    worst = max(refused.values(), key=lambda e: e.exit_code)
    return type(worst)(f"no tenant {verb}: " + "; ".join(str(e) for e in refused.values()))
