"""The [energy] section: energy per tenant (facility energy through each site's PUE)
and billing exports."""

from __future__ import annotations

from compute.config_base import Section as _Section


class EnergySettings(_Section):
    """[energy]"""
