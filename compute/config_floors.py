"""The [floors] section: burn-in floors learned from the fleet's own passing burn-ins
(docs/learned-floors.md)."""

from __future__ import annotations

from pydantic import Field

from compute.config_base import Section as _Section
from health.floor_learning import MAX_RAISE_LIMIT, LearningRule


class FloorsSettings(_Section):
    """[floors]"""

    learned: bool = Field(
        True,
        description="Learn burn-in floors per GPU model and software stack from the fleet's "
        "passing burn-ins, and judge burn-in figures against them: at ingest, and on the "
        "nodes that fetch them (computectl node check --report). Off: the fixed floors "
        "alone (health/data/floors.toml), a table learned before included.",
    )
    k: float = Field(
        4.0,
        ge=1.0,
        le=20.0,
        description="The learned floor sits this many robust standard deviations "
        "(1.4826 x MAD) under the fleet's median.",
    )
    min_margin: float = Field(
        0.03,
        ge=0.0,
        le=0.5,
        description="The learned floor is at least this share under the median, however "
        "alike the fleet's figures are.",
    )
    max_raise: float = Field(
        1.25,
        ge=1.0,
        le=MAX_RAISE_LIMIT,
        description="The learned floor is at most the fixed floor times this.",
    )
    min_samples: int = Field(
        32,
        ge=2,
        le=1_000_000,
        description="Fewer passing figures than this for a model, stack and check: the "
        "fixed floor stands.",
    )
    min_nodes: int = Field(
        4,
        ge=1,
        le=100_000,
        description="Figures from fewer nodes than this: the fixed floor stands.",
    )
    window_days: float = Field(
        14.0,
        gt=0,
        le=366,
        description="Learn from the burn-ins of this many days (at most what [sweep] "
        "results_retention_days keeps).",
    )
    refresh_seconds: float = Field(
        3600.0,
        ge=60,
        le=7 * 86_400,
        description="Learn again after a sweep at most this often.",
    )
    max_results: int = Field(
        200_000,
        ge=100,
        le=10_000_000,
        description="Read at most this many of the newest burn-in results to learn from.",
    )

    def rule(self) -> LearningRule:
        return LearningRule(
            k=self.k,
            min_margin=self.min_margin,
            max_raise=self.max_raise,
            min_samples=self.min_samples,
            min_nodes=self.min_nodes,
        )
