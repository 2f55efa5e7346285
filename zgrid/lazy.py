"""Package faces whose heavy members load on first use (PEP 562).

A face names where each lazy member lives; the first ``package.name`` (or ``from package
import name``) imports that module and keeps the value in the package, so the next
lookup is a plain attribute. Uses only the standard library: processes that must start
fast (the container supervisor) import faces built with it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_members"]


def lazy_members(
    package: str, homes: Mapping[str, str], exported: Iterable[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``homes`` maps a member to its module."""
    namespace = sys.modules[package].__dict__
    names = sorted(set(exported))

    def load(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *names})

    return load, listing
