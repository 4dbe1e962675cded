"""Off a terminal, a table printed without rich is byte for byte the one rich prints; what it
cannot print so (wide characters, markup in a header, a title wider than the table), rich
prints."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute.cli import output
from compute.cli.output import plain_table, state_style, table

ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
ANY = st.text(max_size=8)
CELL = st.one_of(ASCII, ANY, st.none(), st.integers(-5, 10**6))


def _printed(plain: bool, *args: Any) -> tuple[str, str | None]:
    """What table() prints with the plain path allowed or not, and what the plain path made."""
    made: list[str | None] = []

    def spy(*a: Any) -> str | None:
        made.append(plain_table(*a) if plain else None)
        return made[-1]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(output, "plain_table", spy)
        for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
            m.delenv(name, raising=False)
        buf = io.StringIO()
        with redirect_stdout(buf):
            table(*args)
    return buf.getvalue(), made[0] if made else None


def _same(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    styles: dict[int, Callable[[Any], str]] | None = None,
) -> str | None:
    fast, made = _printed(True, title, columns, rows, styles)
    slow, _ = _printed(False, title, columns, rows, styles)
    assert fast == slow
    return made


@settings(max_examples=300, deadline=None)
@given(
    title=st.one_of(st.none(), ASCII, ANY),
    columns=st.lists(
        st.one_of(st.sampled_from(["", "node", "gpus", "a b", " x ", "[b]", "at:"]), ASCII),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_plain_table_is_what_rich_prints(
    title: str | None,
    columns: list[str],
    data: st.DataObject,
) -> None:
    rows = data.draw(
        st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=6)
    )
    _same(title, columns, rows, {0: state_style})


def test_the_plain_path_is_taken_for_ascii() -> None:
    rows = [("gpu-001", "in_service", None, "  two  spaces ")]
    made = _same("latest results", ["node", "state", "x", "reason"], rows)
    assert made is not None and made.splitlines()[0].startswith("latest results")


@pytest.mark.parametrize(
    ("title", "columns", "rows"),
    [
        (None, ["node", "reason"], [("gpu-001", "NIC 交換")]),
        (None, ["node", "reason"], [("gpu-001", "cafe\u0301")]),
        (None, ["[bold]x[/bold]"], [("1",)]),
        ("a title far wider than the table", ["a"], [("1",)]),
        ("pool: training", ["a"], [("1",)]),
    ],
)
def test_rich_prints_what_the_plain_path_cannot(
    title: str | None,
    columns: list[str],
    rows: list[tuple[str, ...]],
) -> None:
    assert _same(title, columns, rows) is None


def test_a_terminal_gets_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert output._drawn()
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert output._drawn()  # rich decides
