"""Tables for people, JSON for scripts; and the one red line for errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

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


def console() -> Console:
    return Console(soft_wrap=False)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    styles: dict[int, Callable[[Any], str]] | None = None,
) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            text = "" if v is None else str(v)
            if styles and i in styles:
                style = styles[i](v)
                text = f"[{style}]{text}[/]" if style else text
            cells.append(text.replace("[", "\\[") if not (styles and i in styles) else text)
        t.add_row(*cells)
    console().print(t)


def state_style(v: Any) -> str:
    return STATE_STYLE.get(str(v), "")


def error_line(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
