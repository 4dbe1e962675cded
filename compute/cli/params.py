"""Click parameter types for what operators type: the same checks, limits and messages as
the API's (compute.validation), so a value one accepts the other accepts too."""

from __future__ import annotations

import importlib
from typing import Any

import click

from health.inputs import InputError


class Checked(click.ParamType[str]):
    """A string parameter checked (and possibly normalised) by a function of
    compute.validation, named here and imported on first use (it loads pydantic)."""

    def __init__(self, name: str, check: str) -> None:
        self.name = name
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        check = getattr(importlib.import_module("compute.validation"), self._check)
        try:
            return str(check(value))
        except InputError as exc:
            self.fail(str(exc), param, ctx)


NODE = Checked("node", "node_name")
REASON = Checked("text", "reason")
TENANT = Checked("tenant", "tenant_name")
POOL = Checked("pool", "pool_name")
SHORT_TEXT = Checked("text", "short_text")
