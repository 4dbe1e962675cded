"""A package's names loaded when first asked for (PEP 562), so that importing one light
module of the package (its settings) does not load the whole backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from types import MappingProxyType
from typing import Any


def names_from(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds each of ``where``'s names in its module."""
    found = MappingProxyType(dict(where))

    def __getattr__(name: str) -> Any:
        module = found.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__
