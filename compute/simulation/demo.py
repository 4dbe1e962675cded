"""The demo's opening act: one fatal fault on a busy node soon after start."""

from __future__ import annotations

from compute.simulation.datacenter import SimulatedDatacenter


def opening_fault(dc: SimulatedDatacenter, kind: str, gpu: int = 3) -> str | None:
    """Inject ``kind`` on the busiest node (ties by name); returns the node, or None."""
    with dc.session():
        busy = sorted(dc.cluster.nodes, key=lambda n: (-len(dc.cluster.running_on(n)), n))
        candidates = [n for n in busy if not dc.cluster.nodes[n].drain]
        if not candidates:
            return None
        node = candidates[0]
        dc.inject(node, kind, gpu)
        return node
