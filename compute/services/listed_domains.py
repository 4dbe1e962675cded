"""The NVLink domain a node's workload manager lists it in, as the control plane keeps it.

A node that has not reported its domain through NVML (new, or its agent never came up)
would otherwise be judged alone. Its workload manager often knows the domain already:
Kubernetes by the GPU feature discovery's ``nvidia.com/gpu.clique`` label (the same name
NVML gives, ``<cluster uuid>/<clique>``), Slurm by the topology/block block the site put
the rack's trays in (``block/<name>``, scheduler/topology.py). The listing's word is kept
on the node (``health.listed_domain``) and used where the node's own report is missing
(health/nvlink_domain.py's ``domain_of``, the one answer to "which domain").

A block is only a name: where its nodes have reported their domain, the block stands for
the domain most of them report, so a node not yet heard from joins its rack's nodes rather
than a domain of its own. A block of nodes none of which reported is kept as the block,
only for models whose NVLink domain spans a rack (health/models.py): a site may group other
nodes into blocks for reasons of its own.

Where the node's own report and its listing disagree (a mislabelled node, a rack recabled
without its labels), the node's report wins, and the disagreement is recorded once, as an
event, until it changes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from compute.domain import Event, EventKind, Node
from health.models import RACK_NVLINK_MODELS
from health.nvlink_domain import believable_domain, fabric_named, recorded_domain
from health.policy import NodeHealth
from scheduler.protocol import NodeStatus


def resolve(statuses: Sequence[NodeStatus], known: Mapping[str, Node]) -> dict[str, str]:
    """Pure: node → the domain its listing places it in, for every listed node whose
    listing names a believable one (the others have none)."""
    out: dict[str, str] = {}
    blocks: dict[str, list[NodeStatus]] = defaultdict(list)
    for s in statuses:
        if not s.nvlink_domain:
            continue  # most nodes of most sites: nothing to check
        listed = believable_domain(s.nvlink_domain)
        if fabric_named(listed):
            out[s.name] = listed
        elif listed:
            blocks[listed].append(s)
    for block, members in blocks.items():
        reported: Counter[str] = Counter()
        for s in members:
            node = known.get(s.name)
            own = recorded_domain(node.health.last_values) if node is not None else ""
            if own:
                reported[own] += 1
        top = reported.most_common(1)
        if top and top[0][1] * 2 > sum(reported.values()):
            for s in members:
                out[s.name] = top[0][0]
            continue
        for s in members:
            node = known.get(s.name)
            model = s.gpu_model or (node.gpu_model if node is not None else "")
            if model in RACK_NVLINK_MODELS:
                out[s.name] = block
    return out


def disagreement(health: NodeHealth, listed: str) -> str:
    """``"<reported> <listed>"`` when the node's own NVML report names another domain than
    its listing does (both names of the fabric's); "" when they agree or either is missing."""
    own = recorded_domain(health.last_values)
    if own and fabric_named(listed) and own != listed:
        return f"{own} {listed}"
    return ""


def with_listed(health: NodeHealth, listed: str) -> NodeHealth:
    """``health`` with the listing's domain and the disagreement to remember (the same
    object when neither moved: most listings change nothing)."""
    if not (listed or health.listed_domain or health.domain_noted):
        return health
    noted = disagreement(health, listed)
    if health.listed_domain == listed and health.domain_noted == noted:
        return health
    return health.evolve(listed_domain=listed, domain_noted=noted)


def mismatch_event(before: Node, after: Node, listed_as: str, now: datetime) -> Event | None:
    """The event recording a disagreement new since ``before`` (None if there is none)."""
    noted = after.health.domain_noted
    if not noted or noted == before.health.domain_noted:
        return None
    reported, listed = noted.split(" ", 1)
    shown = listed if listed_as == listed else f"{listed} (as {listed_as})"
    return Event(
        at=now,
        node=after.name,
        kind=EventKind.NVLINK_DOMAIN_MISMATCH,
        reason=(
            f"its GPUs report NVLink domain {reported}, its workload manager lists it in "
            f"{shown}: its own report is believed (a mislabelled node, or one moved)"
        ),
        actor="backend",
        pool=after.pool,
        detail={"reported": reported, "listed": listed, "listed_as": listed_as},
    )
