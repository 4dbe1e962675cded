"""Where a node sits (its rack and leaf switch) as a workload manager names it.

What Slurm's features and topology or Kubernetes' labels say is outside input: a name is
believed only if it is one the store, Slurm and Kubernetes all take, else it is unknown.
"""

from __future__ import annotations

import re

# Letters, digits, '.', '_' and '-' as in node names, at most the store's 128 characters
# (racks.name, nodes.switch).
TOPOLOGY_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")


def topology_name(value: object) -> str:
    """``value`` when it is a believable rack or switch name, else "" (unknown)."""
    if isinstance(value, str) and TOPOLOGY_NAME.fullmatch(value):
        return value
    return ""
