"""Every table of the store: the core models and each feature's own module (power, topology
and rack budgets, energy, job impact), so what compares or creates the whole schema (the
migrations' environment, the schema test) sees them all, whatever was imported before."""

from __future__ import annotations

from sqlalchemy import MetaData

from compute.store import (
    acceptance_models,
    energy_models,
    impact_models,
    power_models,
    topology_models,
)
from compute.store.models import Base

# The feature modules register their tables on Base.metadata when imported.
FEATURE_MODELS = (power_models, topology_models, energy_models, impact_models, acceptance_models)


def metadata() -> MetaData:
    return Base.metadata
