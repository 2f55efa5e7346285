"""Query parameters as the grid proxy reads them: empty ones ignored, lists repeated or
comma-separated, booleans ``true``/``false``, and any name a route does not take refused.

Every number has its range; a bad value is a BadQuery naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zgrid.explorer.errors import BadQuery

__all__ = ["LIMIT_NAMES", "MAX_PAGE", "MAX_SIZE", "Limit", "Params"]

U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1
MAX_SIZE = 1000  # rows per page
MAX_PAGE = 1_000_000
MAX_TEXT = 256
MAX_LIST = 1000
LIMIT_NAMES = frozenset(
    {"page", "size", "ret_count", "randomize", "sort_by", "sort_order", "balance"}
)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Limit:
    page: int = 1
    size: int = 50
    ret_count: bool = False
    randomize: bool = False
    sort_by: str = ""
    descending: bool = False
    balance: float = 0.0

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


class Params:
    """The query of one request, checked against the names its route takes."""

    def __init__(self, items: Iterable[tuple[str, str]], names: Iterable[str]) -> None:
        allowed = set(names) | LIMIT_NAMES
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            if value == "":
                continue  # as the grid proxy does: an empty parameter is no parameter
            if name not in allowed:
                raise BadQuery(
                    f"unknown parameter {name!r}; this route takes "
                    + ", ".join(sorted(allowed - LIMIT_NAMES))
                    + " and page, size, ret_count, randomize, sort_by, sort_order"
                )
            self._values.setdefault(name, []).append(value)

    def _one(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadQuery(f"{name} is given {len(values)} times; give it once")
        if len(values[0]) > MAX_TEXT:
            raise BadQuery(f"{name} is {len(values[0])} characters long; at most {MAX_TEXT}")
        return values[0]

    def integer(self, name: str, *, low: int = 0, high: int = U64_MAX) -> int | None:
        text = self._one(name)
        if text is None:
            return None
        return _integer(name, text, low, high)

    def boolean(self, name: str) -> bool | None:
        text = self._one(name)
        if text is None:
            return None
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise BadQuery(f"{name} must be true or false, got {text!r}")

    def text(self, name: str) -> str | None:
        return self._one(name)

    def number(self, name: str, *, low: float = 0.0, high: float = 1e18) -> float | None:
        text = self._one(name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise BadQuery(f"{name} must be a number, got {text!r}") from None
        if not low <= value <= high:  # also refuses nan
            raise BadQuery(f"{name} must be from {low:g} to {high:g}, got {text!r}")
        return value

    def _list(self, name: str) -> list[str] | None:
        values = self._values.get(name)
        if not values:
            return None
        items = [item.strip() for value in values for item in value.split(",") if item.strip()]
        if len(items) > MAX_LIST:
            raise BadQuery(f"{name} lists {len(items)} values; at most {MAX_LIST}")
        if any(len(item) > MAX_TEXT for item in items):
            raise BadQuery(f"{name} has a value longer than {MAX_TEXT} characters")
        return items or None

    def integers(self, name: str) -> list[int] | None:
        items = self._list(name)
        if items is None:
            return None
        return [_integer(name, item, 0, U64_MAX) for item in items]

    def choices(self, name: str, allowed: Sequence[str]) -> list[str] | None:
        items = self._list(name)
        if items is None:
            return None
        for item in items:
            if item.lower() not in allowed:
                raise BadQuery(f"{name} must be one of {', '.join(allowed)}; got {item!r}")
        return [item.lower() for item in items]

    def limit(self, sort_fields: Iterable[str], *, default_size: int = 50) -> Limit:
        page = self.integer("page", low=1, high=MAX_PAGE) or 1
        size = self.integer("size", low=1, high=MAX_SIZE) or default_size
        sort_by = self.text("sort_by") or ""
        fields = sorted(sort_fields)
        if sort_by and sort_by not in fields:
            raise BadQuery(f"{sort_by!r} is not a sort field here; use one of {', '.join(fields)}")
        order = (self.text("sort_order") or "asc").lower()
        if order not in ("asc", "desc"):
            raise BadQuery(f"{order!r} is not a valid sort order; use asc or desc")
        return Limit(
            page=page,
            size=size,
            ret_count=bool(self.boolean("ret_count")),
            randomize=bool(self.boolean("randomize")),
            sort_by=sort_by,
            descending=order == "desc",
            balance=self.number("balance") or 0.0,
        )


def _integer(name: str, text: str, low: int, high: int) -> int:
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
        raise BadQuery(f"{name} must be a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be from {low} to {high}, got {value}")
    return min(value, I64_MAX)  # the database's columns are 64-bit signed
