"""/metrics: GPU and node power readings and caps, from the store (every replica says the
same). Two queries whatever the fleet's size: the nodes' latest readings (one row per
reporting node) and the caps counted by state."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.config import Settings
from compute.store import Store
from compute.store import power as readings
from compute.store import power_caps as kept


def metrics(store: Store, settings: Settings) -> Iterator[Metric]:
    gpus = GaugeMetricFamily(
        "computectl_node_gpu_power_watts",
        "A node's GPUs' draw at its latest power report (NVML).",
        labels=["node", "rack"],
    )
    bmc = GaugeMetricFamily(
        "computectl_node_bmc_power_watts",
        "A node's whole draw as its BMC read it at its latest power report (IPMI DCMI); "
        "absent where it has none.",
        labels=["node", "rack"],
    )
    for node, rack, gpu_watts, node_watts in readings.totals(store):
        gpus.add_metric([node, rack], gpu_watts)
        if node_watts is not None:
            bmc.add_metric([node, rack], node_watts)
    caps = GaugeMetricFamily(
        "computectl_gpu_power_caps",
        "GPU power caps by state: pending (not applied yet), applied, failed (the node could "
        "not apply it), reverting, revert_failed.",
        labels=["state"],
    )
    counts = kept.state_counts(store)
    for state in kept.ACTIVE:
        caps.add_metric([state], float(counts.get(state, 0)))
    yield gpus
    yield bmc
    yield caps
