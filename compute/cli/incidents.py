"""`computectl incidents`: the brake for shared causes (a rack, switch or pool whose
automated drains are held) and its release."""

from __future__ import annotations

import click

from compute.cli.context import CliContext
from compute.cli.output import emit_json, output_option, say, table


@click.group()
def incidents() -> None:
    """Incidents of the brake for shared causes: list, show, release."""


@incidents.command("list")
@click.option("--state", type=click.Choice(["open", "released"]), default=None)
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@output_option
@click.pass_obj
def incidents_list(obj: CliContext, state: str | None, limit: int, output: str) -> None:
    """Incidents, newest first."""
    found = obj.client().incidents(state, limit)
    if output == "json":
        emit_json(found)
        return
    table(
        None,
        ["id", "state", "opened", "scope", "cause", "nodes", "held"],
        [
            (
                i["id"],
                i["state"],
                i["opened_at"],
                f"{i['scope_kind']} {i['scope']}",
                i["cause"],
                len(i["nodes"]),
                i["held"],
            )
            for i in found
        ],
    )


@incidents.command("show")
@click.argument("id_", metavar="ID", type=click.IntRange(1, 2**62))
@output_option
@click.pass_obj
def incidents_show(obj: CliContext, id_: int, output: str) -> None:
    """One incident with its evidence."""
    data = obj.client().incident(id_)
    if output == "json":
        emit_json(data)
        return
    say(f"incident {data['id']} ({data['state']}): {data['summary']}")
    ev = data["evidence"]
    rows = [(d["node"], d["check"], d["at"], "drained") for d in ev.get("drained", [])]
    rows += [(d["node"], d["check"], d["at"], "held") for d in ev.get("held", [])]
    table("evidence", ["node", "check", "at", "outcome"], rows)
    if data["released_at"]:
        say(f"released {data['released_at']} by {data['released_by']}")


@incidents.command("release")
@click.argument("id_", metavar="ID", type=click.IntRange(1, 2**62))
@output_option
@click.pass_obj
def incidents_release(obj: CliContext, id_: int, output: str) -> None:
    """Release the brake: automated drains there proceed again."""
    data = obj.client().release_incident(id_)
    if output == "json":
        emit_json(data)
        return
    say(
        f"incident {data['id']} released: automated drains in {data['scope_kind']} "
        f"{data['scope']} proceed again"
    )
