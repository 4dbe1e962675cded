"""The [power] section: GPU power readings from nodes and power caps through the node agent."""

from __future__ import annotations

from compute.config_base import Section as _Section


class PowerSettings(_Section):
    """[power]"""
