"""The checks: passive ones read telemetry; burn-in ones run work on an idle GPU."""

from health.checks.base import Check, CheckContext
from health.checks.registry import burnin_checks, passive_checks

__all__ = ["Check", "CheckContext", "burnin_checks", "passive_checks"]
