"""The ledger's state: typed tables of JSON records in memory, with per-transaction undo.

Every write goes through :class:`State`, which keeps two logs: an undo journal
so a transaction that fails half-way leaves no trace, and the block's write set,
which the block store persists and the state commitment covers. The commitment
of block N is BLAKE2b-256(commitment of N-1 || digest of N's sorted write set):
two validators agree on it exactly when they made the same writes from genesis.

A transaction's records are encoded when it commits, not when the block is sealed:
a record the store could not keep (a number outside 64 bits, a value canonical
JSON refuses) fails that one transaction, which is then rolled back, and sealing
reuses the encoding, so it has nothing left that can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from zgrid.canonical import plain_dumps
from zgrid.chain.errors import UnstorableRecord
from zgrid.chain.units import I64_MIN, U64_MAX
from zgrid.identity import CanonicalJSONError, blake2b256, canonical_dumps, canonical_loads

__all__ = [
    "GENESIS_PARENT",
    "State",
    "Table",
    "WriteSet",
    "encode_document",
    "encode_record",
    "float_fields",
    "next_commitment",
]

M = TypeVar("M", bound=BaseModel)

# (table, key) -> canonical JSON of the record, or None when it was deleted.
WriteSet = dict[tuple[str, str], bytes | None]

GENESIS_PARENT = bytes(32)
_MISSING = object()


def _check_integers(value: Any, path: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not I64_MIN <= value <= U64_MAX:
            # bit_length, not the digits: str() of a huge int is itself refused by Python.
            raise UnstorableRecord(
                f"{path} would be a {value.bit_length()}-bit number, the ledger keeps 64 bits"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_integers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_integers(item, f"{path}[{index}]")


def _storable(value: Any) -> bool:
    """Whether ``value`` is made of JSON's exact types with every integer in 64 bits: one
    fast walk with no paths; anything else goes the slow way, which names the problem."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
        if not all(type(key) is str for key in value):
            return False
    elif kind is list:
        items = value
    else:
        items = (value,)
    for item in items:
        kind = type(item)
        if kind is int:
            if not I64_MIN <= item <= U64_MAX:
                return False
        elif kind is str or kind is bool or item is None:
            continue
        elif kind is dict or kind is list:
            if not _storable(item):
                return False
        else:
            return False
    return True


def encode_document(document: Any, where: str) -> bytes:
    """Canonical JSON of ``document`` with every integer in 64 bits, or UnstorableRecord."""
    if _storable(document):
        return plain_dumps(document)
    _check_integers(document, where)
    try:
        return canonical_dumps(document)
    except CanonicalJSONError as exc:
        raise UnstorableRecord(f"{where}: {exc}") from exc


def encode_record(value: BaseModel, where: str = "record") -> bytes:
    """The canonical JSON the block store keeps for ``value``, or UnstorableRecord.

    A record's JSON form holds only JSON's types (its model has no float field: see
    :func:`float_fields`), and the encoder refuses numbers outside 64 bits, so only a
    refusal needs the slow walk, which names what was wrong."""
    document = value.model_dump(mode="json")
    try:
        return plain_dumps(document)
    except CanonicalJSONError:
        return encode_document(document, where)


def float_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` (nested ones too) whose JSON form may be a float."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "number":
                found.append(where or "$")
            for key, item in node.items():
                walk(item, f"{where}.{key}".lstrip("."))
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(model.model_json_schema(mode="serialization"), "")
    return found


def next_commitment(previous: bytes, writes: WriteSet) -> bytes:
    ordered = [
        [table, key, None if value is None else value.decode()]
        for (table, key), value in sorted(writes.items())
    ]
    return blake2b256(previous + blake2b256(plain_dumps(ordered)))


class Table(Generic[M]):
    """One kind of record (accounts, twins, ...), keyed by string."""

    def __init__(self, state: State, name: str, model: type[M]) -> None:
        self._state = state
        self.name = name
        self.model = model
        self._rows: dict[str, M] = {}

    def get(self, key: str | int) -> M | None:
        return self._rows.get(key if type(key) is str else str(key))

    def __contains__(self, key: str | int) -> bool:
        return str(key) in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def values(self) -> Iterator[M]:
        return iter(self._rows.values())

    def put(self, key: str | int, value: M) -> None:
        key = str(key)
        self._state._record(self, key, self._rows.get(key, _MISSING))
        self._rows[key] = value

    def delete(self, key: str | int) -> None:
        key = str(key)
        if key in self._rows:
            self._state._record(self, key, self._rows[key])
            del self._rows[key]

    def _restore(self, key: str, value: Any) -> None:
        if value is _MISSING:
            self._rows.pop(key, None)
        else:
            self._rows[key] = value

    def _load(self, key: str, raw: bytes) -> None:
        self._rows[key] = self.model.model_validate(canonical_loads(raw))


class State:
    """All tables plus the journal of the transaction being applied and the block's writes."""

    def __init__(self) -> None:
        self._tables: dict[str, Table[Any]] = {}
        self._journal: list[tuple[Table[Any], str, Any]] | None = None
        self._dirty: dict[tuple[str, str], Table[Any]] = {}
        self._newly_dirty: list[tuple[str, str]] = []
        # (table, key) -> (the committed record, its encoding), so sealing encodes nothing.
        self._encoded: dict[tuple[str, str], tuple[Any, bytes]] = {}

    def table(self, name: str, model: type[M]) -> Table[M]:
        if name in self._tables:
            raise ValueError(f"table {name!r} defined twice")
        floats = float_fields(model)
        if floats:  # canonical JSON has no floats, and encode_record relies on it
            raise TypeError(f"table {name!r}: {model.__name__} has float fields: {floats}")
        table: Table[M] = Table(self, name, model)
        self._tables[name] = table
        return table

    def _record(self, table: Table[Any], key: str, previous: Any) -> None:
        if self._journal is not None:
            self._journal.append((table, key, previous))
        dirty_key = (table.name, key)
        if dirty_key not in self._dirty:
            self._dirty[dirty_key] = table
            if self._journal is not None:
                self._newly_dirty.append(dirty_key)

    # A transaction runs between begin() and commit()/rollback(); rollback undoes its
    # writes and also drops the keys only it touched from the block's write set, so
    # the write set is exactly what replaying the block's accepted transactions makes.
    def begin(self) -> None:
        self._journal = []
        self._newly_dirty = []

    def commit(self) -> None:
        """End the transaction, encoding every record it wrote.

        Raises UnstorableRecord, with the journal kept, if a record cannot be stored;
        the caller then rolls the transaction back.
        """
        encoded: dict[tuple[str, str], tuple[Any, bytes]] = {}
        for table, key, _ in self._journal or []:
            dirty_key = (table.name, key)
            if dirty_key in encoded:
                continue
            value = table._rows.get(key)
            if value is None:
                continue
            document = value.model_dump(mode="json")
            try:
                raw = plain_dumps(document)
            except CanonicalJSONError:  # the slow way, which names what was wrong
                raw = encode_document(document, f"{table.name}/{key}")
            encoded[dirty_key] = (value, raw)
        self._encoded.update(encoded)
        self._journal = None

    def rollback(self) -> None:
        journal = self._journal or []
        self._journal = None
        for table, key, previous in reversed(journal):
            table._restore(key, previous)
        for dirty_key in self._newly_dirty:
            del self._dirty[dirty_key]

    def take_writes(self) -> WriteSet:
        """The block's write set, encoded, and a fresh one for the next block."""
        writes: WriteSet = {}
        encoded = self._encoded
        for dirty_key, table in self._dirty.items():
            value = table._rows.get(dirty_key[1])
            if value is None:
                writes[dirty_key] = None
                continue
            cached = encoded.get(dirty_key)
            writes[dirty_key] = (
                cached[1] if cached is not None and cached[0] is value else encode_record(value)
            )
        self._dirty = {}
        self._encoded = {}
        return writes

    def dump(self) -> dict[tuple[str, str], bytes]:
        """Every record of every table, encoded as the block store keeps it."""
        return {
            (name, key): encode_record(value)
            for name, table in self._tables.items()
            for key, value in table._rows.items()
        }

    def load(self, name: str, key: str, raw: bytes) -> None:
        """Fill a table from the block store at start-up (no journal, not dirty)."""
        self._tables[name]._load(key, raw)
