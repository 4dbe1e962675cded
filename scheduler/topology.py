"""Where a node sits (its rack and leaf switch) as a workload manager names it.

What Slurm's features and topology or Kubernetes' labels say is outside input: a name is
believed only if it is one the store, Slurm and Kubernetes all take, else it is unknown.
"""

from __future__ import annotations

import logging
import re

# Letters, digits, '.', '_' and '-' as in node names, at most the store's 128 characters
# (racks.name, nodes.switch).
TOPOLOGY_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")


def topology_name(value: object) -> str:
    """``value`` when it is a believable rack or switch name, else "" (unknown)."""
    if isinstance(value, str) and TOPOLOGY_NAME.fullmatch(value):
        return value
    return ""


# The NVLink domain of a Grace Blackwell node (an NVL72 rack), as a workload manager names
# it; the control plane believes it only as health/nvlink_domain.py's believable_domain does.
# GPU feature discovery's label on fabric-attached nodes: "<cluster uuid>.<clique id>"
# (k8s-device-plugin internal/lm/fabric.go); NVML's own name for the domain is
# "<cluster uuid>/<clique id>", which is what a listing says, so both name it alike.
CLIQUE_LABEL = "nvidia.com/gpu.clique"
_CLIQUE = re.compile(
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.([0-9]{1,10})"
)
_NO_CLUSTER = "00000000-0000-0000-0000-000000000000"
# A Slurm block name kept as a domain: short enough that "block/<name>" fits everywhere a
# domain is kept (an incident's scope).
_BLOCK = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def clique_domain(value: object) -> str:
    """The domain a clique label's value names (``<uuid>/<clique>``, the UUID in lower case),
    "" when ``value`` is not such a label value (absent, garbage, or no cluster)."""
    if not isinstance(value, str) or len(value) > 64:
        return ""
    m = _CLIQUE.fullmatch(value)
    if m is None or m.group(1) == _NO_CLUSTER or int(m.group(2)) > 0xFFFFFFFF:
        return ""
    return f"{m.group(1).lower()}/{int(m.group(2))}"


def block_domain(name: object) -> str:
    """The domain a Slurm topology block stands for (``block/<name>``); "" when the name is
    not one computectl believes."""
    if isinstance(name, str) and _BLOCK.fullmatch(name):
        return f"block/{name}"
    return ""


def note_unbelieved(log: logging.Logger, what: str, found: list[tuple[str, str]]) -> None:
    """One log line for a listing's values ``what`` that were not believed (node, value): the
    nodes are listed without a domain, and an operator can see why."""
    if found:
        shown = ", ".join(f"{node} ({value[:80]!r})" for node, value in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        log.warning("%s not understood, ignored: %s%s", what, shown, more)
