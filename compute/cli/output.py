"""Tables for people, JSON for scripts; and the one red line for errors."""

from __future__ import annotations

import builtins
import json
import os
import sys
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
    # Cells are Text, not markup: stored text is shown as it is, never read as rich
    # markup or emoji codes; control characters are shown as escapes.
    heading = printable(title) if title else None
    cells = [[printable("" if v is None else str(v)) for v in row] for row in rows]
    if not _drawn():
        piped = plain_table(heading, columns, cells)
        if piped is not None:
            sys.stdout.write(piped)
            return
    from rich.table import Table
    from rich.text import Text

    out = console()
    # Off a terminal: columns separated by spaces, no box drawing (awk, cut and grep read it).
    frame: dict[str, Any] = (
        {} if out.is_terminal else {"box": None, "pad_edge": False, "padding": (0, 2, 0, 0)}
    )
    t = Table(title=heading, title_justify="left", header_style="bold", **frame)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row, texts in zip(rows, cells, strict=True):
        t.add_row(
            *(
                Text(text, style=styles[i](v) if styles and i in styles else "")
                for i, (v, text) in enumerate(zip(row, texts, strict=True))
            )
        )
    out.print(t)


def _drawn() -> bool:
    """Whether rich takes stdout for a terminal (rich.console.Console.is_terminal): it
    honours TTY_COMPATIBLE and FORCE_COLOR before asking the stream; either set, rich decides.
    """
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    if hasattr(builtins, "get_ipython"):  # Jupyter: rich renders for it
        return True
    try:
        return sys.stdout.isatty()
    except ValueError:  # a closed stream: rich's own answer
        return True


# Text whose width in cells is its length, and that rich reads as it is in a header or title.
_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F))
_MARKUP = frozenset("[:")


def plain_table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> str | None:
    """A table off a terminal, byte for byte as rich prints it there (no box, columns two
    spaces apart, every line padded to the table's width), without loading rich: that is
    most of a read command's start. None where rich would do more than pad ASCII text
    (wide or combining characters, markup in a header, a title wider than the table, an
    empty column): rich prints it then. tests/unit/test_cli_plain_table.py holds the two
    to the same bytes."""
    texts = [list(columns), *(list(r) for r in rows)]
    if not columns or any(len(r) != len(columns) for r in texts):
        return None
    if any(not _PLAIN.issuperset(t) for r in texts for t in r):
        return None
    if any(_MARKUP & set(c) for c in columns):
        return None
    widths = [max(len(r[i]) for r in texts) for i in range(len(columns))]
    width = sum(widths) + 2 * (len(widths) - 1)
    # rich gives an empty column a width of its own.
    if width > PIPED_WIDTH or 0 in widths:
        return None
    lines = ["  ".join(t.ljust(w) for t, w in zip(r, widths, strict=True)) for r in texts]
    if title is not None:
        if not _PLAIN.issuperset(title) or _MARKUP & set(title) or len(title) > width:
            return None
        lines.insert(0, title.ljust(width))
    return "\n".join(lines) + "\n"


def state_style(v: Any) -> str:
    return STATE_STYLE.get(str(v).split(" ", 1)[0], "")  # "drained (lemon)": as drained


def say(message: str) -> None:
    """Text for people; what it quotes cannot act on the terminal (its lines stay lines)."""
    click.echo("\n".join(printable(line) for line in message.split("\n")))


def error_line(message: str) -> None:
    click.secho(f"error: {printable(' '.join(message.splitlines()))}", fg="red", err=True)


def stamp(iso: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A view's ISO 8601 timestamp as the tables show it."""
    from datetime import datetime

    return datetime.fromisoformat(iso).strftime(fmt)
