"""The [lemons] section: nodes that fail again and again across repairs (docs/lemons.md)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from compute.config_base import Section as _Section


class LemonAction(StrEnum):
    FLAG = "flag"  # the mark only: an event, `nodes list|show`, /metrics
    RMA = "rma"  # the mark, escalated: the RMA report carries the node's whole history
    RETIRE = "retire"  # the mark, escalated, and the node retired once it is out of service


class LemonSettings(_Section):
    """[lemons]"""

    failures: int = Field(
        3,
        ge=1,
        le=100,
        description="How many times a node must fail again after coming back from repair, "
        "within window_days, to be a lemon. Two can be bad luck (a part swapped for "
        "another bad one, a cable reseated badly); a third repeat is a pattern the vendor "
        "should answer for.",
    )
    window_days: int = Field(
        30,
        ge=1,
        le=3_660,
        description="The window the repeat failures are counted in: a month covers several "
        "repair turnarounds (days each) while a node that failed twice a year ago and once "
        "now is not called a lemon.",
    )
    action: LemonAction = Field(
        LemonAction.RMA,
        description="What a lemon gets: 'flag' (an event and the mark), 'rma' (the mark, "
        "and its RMA report carries its whole history as evidence: escalation to the "
        "vendor), or 'retire' (as rma, and the node is retired once drained or in repair, "
        "by the existing retire transition). Retiring takes capacity out for good, so it "
        "is a choice to make, not the default.",
    )
