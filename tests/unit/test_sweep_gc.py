"""Garbage collections held off while a sweep builds what lives until it ends, and given
back as they were."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from compute.services.sweep_gc import all_collections_held, full_collections_held


@pytest.fixture(autouse=True)
def _gc_as_it_was() -> Iterator[None]:
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()  # what a test froze is collectable again, as before it
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_full_collections_are_held_young_ones_go_on() -> None:
    gc.enable()
    gc.set_threshold(700, 10, 10)
    with full_collections_held():
        young, middle, full = gc.get_threshold()
        assert (young, middle) == (700, 10) and full > 10**9
        with full_collections_held():  # nested: the outer one restores
            assert gc.get_threshold()[2] == full
        assert gc.get_threshold()[2] == full
    assert gc.get_threshold() == (700, 10, 10)


def test_all_collections_held_then_given_back() -> None:
    gc.enable()
    with all_collections_held():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_all_collections_held_even_when_the_body_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), all_collections_held():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_process_that_held_them_itself_keeps_them_held() -> None:
    gc.disable()
    with all_collections_held():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_what_was_made_while_held_is_not_scanned_after() -> None:
    gc.enable()
    with all_collections_held():
        made = [[i] for i in range(1000)]
    assert gc.get_freeze_count() >= len(made)
