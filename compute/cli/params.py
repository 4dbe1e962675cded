"""Click parameter types for what operators type: the same checks, limits and messages as
the API's (compute.validation), so a value one accepts the other accepts too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from compute import validation
from health.inputs import InputError


class Checked(click.ParamType[str]):
    """A string parameter checked (and possibly normalised) by a validation function."""

    def __init__(self, name: str, check: Callable[[str], str]) -> None:
        self.name = name
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self._check(value)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


NODE = Checked("node", validation.node_name)
REASON = Checked("text", validation.reason)
TENANT = Checked("tenant", validation.tenant_name)
POOL = Checked("pool", validation.pool_name)
SHORT_TEXT = Checked("text", validation.short_text)
