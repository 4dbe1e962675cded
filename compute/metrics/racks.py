"""/metrics: racks against their power budgets, as the last judgement after a sweep left
them in the store (compute/services/rack_budgets.py): every replica exports the same."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from compute.config import Settings
from compute.store import Store
from compute.store import topology as kept


def metrics(store: Store, settings: Settings) -> Iterator[Metric]:
    over = GaugeMetricFamily(
        "computectl_rack_over_budget",
        "1 while a rack draws more than its power budget (or cooling limit), or is forecast "
        "to within [topology] forecast_minutes; 0 once back under.",
        labels=["rack"],
    )
    ahead = GaugeMetricFamily(
        "computectl_rack_power_forecast_watts",
        "A rack's draw forecast [topology] forecast_minutes ahead at its recent trend.",
        labels=["rack"],
    )
    limit = GaugeMetricFamily(
        "computectl_rack_power_limit_watts",
        "What a rack may draw: its budget, or its cooling limit where lower.",
        labels=["rack"],
    )
    room_watts = GaugeMetricFamily(
        "computectl_room_power_watts",
        "Latest judged draw of a room's racks, summed.",
        labels=["room"],
    )
    room_limit = GaugeMetricFamily(
        "computectl_room_power_limit_watts",
        "What a room's racks may draw, summed.",
        labels=["room"],
    )
    rooms: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for st in kept.standings(store):
        over.add_metric([st.rack], 1.0 if st.over else 0.0)
        ahead.add_metric([st.rack], st.forecast_watts)
        limit.add_metric([st.rack], st.limit_watts)
        room = str(st.detail.get("room", ""))
        if room:
            rooms[room][0] += st.watts
            rooms[room][1] += st.limit_watts
    for room, (watts, lim) in sorted(rooms.items()):
        room_watts.add_metric([room], round(watts, 1))
        room_limit.add_metric([room], lim)
    yield over
    yield ahead
    yield limit
    yield room_watts
    yield room_limit
