"""The explorer's database behind one interface: SQLite (embedded, WAL) or PostgreSQL.

:class:`ExplorerStore` opens a database URL, brings its tables to the newest migration
(Alembic), pins the chain it indexes, and applies one block at a time in one transaction
together with the cursor, so a crash leaves the database at the end of a whole block.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from zgrid.explorer import schema
from zgrid.explorer.errors import ExplorerStoreError, LedgerMismatch

__all__ = ["ChainIdentity", "ExplorerStore", "Position", "database_url", "upsert"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Position:
    """The last block applied whole: the indexer resumes right after it."""

    height: int
    block_hash: str
    timestamp: int
    events: int


@dataclass(frozen=True)
class ChainIdentity:
    chain_id: str
    validator: str
    genesis: str  # the canonical JSON of the genesis document


def database_url(text: str) -> str:
    """``sqlite:///path`` or ``postgresql://…`` as SQLAlchemy takes it (psycopg for PostgreSQL).

    Anything else is refused with a message naming the two forms.
    """
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "sqlite":
        if not text.startswith("sqlite:///") or text == "sqlite:///":
            raise ExplorerStoreError(
                f"--db {text!r}: a SQLite database is sqlite:///path/to/file.db"
            )
        return text
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if scheme == "postgresql+psycopg":
        return text
    raise ExplorerStoreError(
        f"--db {text!r}: use sqlite:///path/to/file.db or postgresql://user@host:port/database"
    )


def _describe(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split()) or type(original).__name__


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.close()


def upsert(
    connection: Connection, table: sa.Table, values: Mapping[str, Any], *, keys: tuple[str, ...]
) -> None:
    """Insert ``values`` or, when a row with the same ``keys`` exists, overwrite it."""
    insert: Any = (
        postgresql.insert(table)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(table)
    )
    statement = insert.values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in keys}
    if changed:
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=changed)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    connection.execute(statement)


class _Superseded(Exception):
    """The cursor moved under a transaction: roll it back."""


class ExplorerStore:
    """One explorer database. Thread-safe: readers and the one writer take connections of
    their own from the engine's pool."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = database_url(url)
        try:
            if self.url.startswith("sqlite"):
                path = Path(self.url.removeprefix("sqlite:///"))
                if not path.parent.is_dir():
                    raise ExplorerStoreError(f"--db: no directory {path.parent} for {path.name}")
                self.engine: Engine = sa.create_engine(
                    self.url, pool_size=pool_size, connect_args={"check_same_thread": False}
                )
                sa_event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(
                    self.url,
                    pool_size=pool_size,
                    pool_pre_ping=True,
                    connect_args={"connect_timeout": 10},
                )
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ExplorerStoreError(f"--db {url!r}: {_describe(exc)}") from exc
        self.dialect = self.engine.dialect.name

    @property
    def where(self) -> str:
        """The database named without its password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ExplorerStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- connections ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for queries; database failures become ExplorerStoreError."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise ExplorerStoreError(f"the database {self.where} failed: {_describe(exc)}") from exc

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise ExplorerStoreError(f"the database {self.where} failed: {_describe(exc)}") from exc

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the tables to the newest migration (a new database gets them all)."""
        from alembic import command  # noqa: PLC0415  (Alembic is needed only here)
        from alembic.config import Config  # noqa: PLC0415

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (SQLAlchemyError, DBAPIError) as exc:
            raise ExplorerStoreError(
                f"cannot prepare the database {self.where}: {_describe(exc)}"
            ) from exc

    # -- the chain it indexes ------------------------------------------------------------------

    def identity(self) -> ChainIdentity | None:
        with self.reading() as connection:
            rows = dict(connection.execute(sa.select(schema.meta.c.key, schema.meta.c.value)).all())
        if "chain_id" not in rows:
            return None
        return ChainIdentity(rows["chain_id"], rows.get("validator", ""), rows.get("genesis", ""))

    def pin(self, chain: ChainIdentity) -> None:
        """Record the chain this database indexes, or refuse a database of another chain."""
        known = self.identity()
        if known is None:
            with self.writing() as connection:
                for key, value in (
                    ("chain_id", chain.chain_id),
                    ("validator", chain.validator),
                    ("genesis", chain.genesis),
                ):
                    upsert(connection, schema.meta, {"key": key, "value": value}, keys=("key",))
            return
        if known.chain_id != chain.chain_id:
            raise LedgerMismatch(
                f"the database {self.where} indexes chain {known.chain_id!r}; the ledger runs "
                f"{chain.chain_id!r}: give another --db, or --rebuild to start it over"
            )
        if known.validator != chain.validator or known.genesis != chain.genesis:
            raise LedgerMismatch(
                f"the database {self.where} indexes another chain {known.chain_id!r} (its genesis "
                "differs from the ledger's): give another --db, or --rebuild to start it over"
            )

    def position(self) -> Position | None:
        with self.reading() as connection:
            row = connection.execute(
                sa.select(schema.cursor).where(schema.cursor.c.id == 1)
            ).first()
        if row is None:
            return None
        return Position(row.height, row.block_hash, row.timestamp, row.events)

    def apply_block(
        self,
        after: Position | None,
        position: Position,
        apply: Callable[[Connection], None],
    ) -> bool:
        """Run ``apply`` and move the cursor from ``after`` to ``position`` in one transaction.

        Returns False, changing nothing, when the cursor is no longer at ``after`` (another
        indexer applied the block first): a block is applied once, whoever applies it.
        """
        values = {
            "height": position.height,
            "block_hash": position.block_hash,
            "timestamp": position.timestamp,
            "events": position.events,
        }
        try:
            with self.writing() as connection:
                if after is None:
                    taken = connection.execute(
                        sa.select(schema.cursor.c.id).where(schema.cursor.c.id == 1)
                    ).first()
                    if taken is not None:
                        raise _Superseded
                    connection.execute(sa.insert(schema.cursor).values(id=1, **values))
                else:
                    moved = connection.execute(
                        sa.update(schema.cursor)
                        .where(
                            schema.cursor.c.id == 1,
                            schema.cursor.c.height == after.height,
                            schema.cursor.c.block_hash == after.block_hash,
                        )
                        .values(**values)
                    )
                    if moved.rowcount != 1:
                        raise _Superseded
                apply(connection)
        except _Superseded:
            return False
        return True

    def clear(self) -> None:
        """Empty every table: the next indexing starts from genesis."""
        with self.writing() as connection:
            for table in reversed(schema.metadata.sorted_tables):
                connection.execute(sa.delete(table))

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in key order: two databases equal when their dumps do."""
        found: dict[str, list[tuple[Any, ...]]] = {}
        with self.reading() as connection:
            for table in schema.metadata.sorted_tables:
                order = list(table.primary_key.columns)
                rows = connection.execute(sa.select(table).order_by(*order)).all()
                found[table.name] = [tuple(row) for row in rows]
        return found
