"""What the API server answers, read strictly: a list page is whole or an error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import Conflict, NotFound, SchedulerError
from scheduler.kubernetes.responses import Expired, Refused, list_page, translate

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
names = st.text(min_size=1, max_size=20)
items = st.lists(
    st.builds(
        lambda n, extra: {"metadata": {"name": n}, **extra},
        names,
        st.dictionaries(st.sampled_from(["spec", "status", "kind"]), json_values, max_size=2),
    ),
    max_size=8,
)


@given(items, st.text(max_size=30))
def test_a_valid_page_comes_back_whole(objs: list[dict[str, Any]], cont: str) -> None:
    page = {"kind": "NodeList", "metadata": {"continue": cont}, "items": objs}
    assert list_page("list nodes", page) == (objs, cont)


@given(json_values)
def test_anything_else_is_an_error_never_a_shorter_list(page: Any) -> None:
    try:
        got, cont = list_page("list nodes", page)
    except SchedulerError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith("list nodes: ")
        return
    # Whatever was accepted is the page's every item, each a named object.
    assert isinstance(page, dict)
    assert got == (page["items"] or [])
    assert all(isinstance(i["metadata"]["name"], str) and i["metadata"]["name"] for i in got)
    assert isinstance(cont, str)


@pytest.mark.parametrize(
    "page",
    [
        {"metadata": {}},  # no items at all
        {"items": {"a": 1}},
        {"items": [{"metadata": {"name": "a"}}, {"metadata": {}}]},  # one nameless item
        {"items": [], "metadata": {"continue": 5}},
        [],
    ],
)
def test_malformed_pages_fail(page: Any) -> None:
    with pytest.raises(SchedulerError):
        list_page("list nodes", page)


def test_an_empty_list_may_come_as_null() -> None:
    assert list_page("list nodes", {"items": None, "metadata": {}}) == ([], "")


class _ApiException(Exception):
    def __init__(self, status: int, body: str = "", headers: dict[str, str] | None = None):
        self.status, self.body, self.headers, self.reason = status, body, headers or {}, ""


@given(st.integers(min_value=0, max_value=599), st.text(max_size=50) | json_values.map(str))
def test_every_status_translates_to_a_scheduler_error(status: int, body: str) -> None:
    err = translate("list nodes", _ApiException(status, body))
    assert isinstance(err, SchedulerError)
    if status == 410:
        assert isinstance(err, Expired)
    if status == 429:
        assert isinstance(err, Refused)


def test_known_statuses() -> None:
    assert isinstance(translate("x", _ApiException(404, '{"message": "gone"}')), NotFound)
    assert isinstance(translate("x", _ApiException(409)), Conflict)
    refused = translate("x", _ApiException(429, "", {"Retry-After": "99"}))
    assert isinstance(refused, Refused) and refused.wait == 5.0
