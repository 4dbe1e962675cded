"""Tables for people, JSON for scripts; and the one red line for errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

from health.inputs import printable

F = TypeVar("F", bound=Callable[..., Any])

STATE_STYLE = {
    "in_service": "green",
    "draining": "yellow",
    "drained": "red",
    "burn_in": "cyan",
    "repair": "magenta",
    "retired": "dim",
    "provisioning": "blue",
    "allocated": "green",
    "idle": "bright_green",
}


def output_option(f: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(f)


# Piped output is read by scripts and grep: one row per line, however long (rich would
# otherwise fold at 80 columns off a terminal). Styles are dropped off a terminal anyway.
PIPED_WIDTH = 100_000


def console() -> Console:
    from rich.console import Console

    out = Console(soft_wrap=False)
    return out if out.is_terminal else Console(soft_wrap=False, width=PIPED_WIDTH)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    styles: dict[int, Callable[[Any], str]] | None = None,
) -> None:
    from rich.table import Table
    from rich.text import Text

    # Cells are Text, not markup: stored text is shown as it is, never read as rich
    # markup or emoji codes; control characters are shown as escapes.
    out = console()
    # Off a terminal: columns separated by spaces, no box drawing (awk, cut and grep read it).
    frame: dict[str, Any] = (
        {} if out.is_terminal else {"box": None, "pad_edge": False, "padding": (0, 2, 0, 0)}
    )
    t = Table(
        title=printable(title) if title else None,
        title_justify="left",
        header_style="bold",
        **frame,
    )
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            style = styles[i](v) if styles and i in styles else ""
            cells.append(Text(printable("" if v is None else str(v)), style=style))
        t.add_row(*cells)
    out.print(t)


def state_style(v: Any) -> str:
    return STATE_STYLE.get(str(v), "")


def say(message: str) -> None:
    """Text for people; what it quotes cannot act on the terminal (its lines stay lines)."""
    click.echo("\n".join(printable(line) for line in message.split("\n")))


def error_line(message: str) -> None:
    click.secho(f"error: {printable(' '.join(message.splitlines()))}", fg="red", err=True)


def stamp(iso: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A view's ISO 8601 timestamp as the tables show it."""
    from datetime import datetime

    return datetime.fromisoformat(iso).strftime(fmt)
