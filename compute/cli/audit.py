"""`computectl audit`: the audit trail read back, newest first."""

from __future__ import annotations

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, table
from compute.cli.params import TENANT


@click.command()
@click.option("--actor", default=None, help="Only this actor: token:12, local:alice, ...")
@click.option("--since", default=None, metavar="WHEN", help="24h, 7d, or an ISO 8601 time.")
@click.option("--tenant", type=TENANT, default=None, help="Only what concerns this tenant.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@output_option
@click.pass_obj
def audit(
    obj: CliContext,
    actor: str | None,
    since: str | None,
    tenant: str | None,
    limit: int,
    output: str,
) -> None:
    """The audit trail: who changed what, when, from where, with what result."""
    views = obj.client().audit(actor, since, tenant, limit)
    if output == "json":
        emit_json(views)
        return
    table(
        None,
        ["time", "actor", "action", "target", "from", "result"],
        [
            (
                v["at"][:19].replace("T", " "),
                v["actor"],
                v["action"],
                v["target"],
                v["source"],
                v["result"],
            )
            for v in views
        ],
    )
