"""The base of every settings section: what any setting's value must be, whatever its type.

The file and the environment give values that pydantic would otherwise coerce: a boolean
for a number (``true`` is 1), a string for a number ("8"), control characters in text.
Settings take none of those, and every number is finite and within 64 bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from compute.config_defaults import MAX_SETTING_TEXT
from health import inputs


def _kinds(annotation: Any) -> set[Any]:
    return {annotation, *get_args(annotation)}


def _printable(value: Any) -> None:
    """Every string in ``value`` (keys too, in tables and lists) is printable text."""
    if isinstance(value, str):
        inputs.text(value, "text", max_len=MAX_SETTING_TEXT)
    elif isinstance(value, dict):
        for k, v in value.items():
            _printable(k)
            _printable(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _printable(v)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _as_given(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        kinds = _kinds(field.annotation) if field is not None else set()
        numeric = bool(kinds & {int, float}) and not kinds & {bool, str, Path}
        if numeric and isinstance(value, bool | str):
            raise ValueError("must be a number (not a string or a boolean)")
        if numeric and isinstance(value, int) and not inputs.INT_MIN <= value <= inputs.INT_MAX:
            raise ValueError("is out of range")
        if numeric and isinstance(value, float) and abs(value) > inputs.FLOAT_MAX:
            raise ValueError("is out of range")
        if int in kinds and float not in kinds and isinstance(value, float):
            raise ValueError("must be a whole number")
        _printable(value)
        return value
