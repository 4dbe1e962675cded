"""The [topology] section: where nodes sit (sites, rooms, rows, racks)
and what a rack over its power budget does."""

from __future__ import annotations

from compute.config_base import Section as _Section


class TopologySettings(_Section):
    """[topology]"""
