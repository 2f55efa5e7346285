"""The explorer's database: migrations make exactly the tables the code reads, on SQLite
and PostgreSQL; database URLs and failures get clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.postgres import PostgresCluster, postgres_cluster  # noqa: F401
from zgrid.explorer import ExplorerStore, ExplorerStoreError, database_url
from zgrid.explorer.schema import metadata
from zgrid.explorer.store import ChainIdentity, Position


def _differences(store: ExplorerStore) -> list[object]:
    with store.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
def test_migrations_make_the_tables_the_code_reads(
    tmp_path: Path,
    postgres_cluster: PostgresCluster,  # noqa: F811
) -> None:
    for url in (
        f"sqlite:///{tmp_path / 'explorer.db'}",
        postgres_cluster.create_database("schema"),
    ):
        store = ExplorerStore(url)
        store.migrate()
        store.migrate()  # a second time finds nothing to do
        assert _differences(store) == [], url
        with store.reading() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == "0001"
            # Alembic cannot compare an index on an expression: look for it by name.
            listed = (
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                if store.dialect == "sqlite"
                else "SELECT indexname FROM pg_indexes WHERE tablename = 'nodes'"
            )
            assert "nodes_by_country" in set(connection.execute(sa.text(listed)).scalars())
        store.close()


def test_a_block_moves_the_cursor_once_and_a_failed_one_leaves_nothing(tmp_path: Path) -> None:
    store = ExplorerStore(f"sqlite:///{tmp_path / 'explorer.db'}")
    store.migrate()
    store.pin(ChainIdentity("zgrid-dev", "ab" * 32, "{}"))
    first = Position(0, "00" * 32, 100, 0)
    assert store.apply_block(None, first, lambda connection: None)
    assert not store.apply_block(None, first, lambda connection: None)

    def fails(connection: sa.Connection) -> None:
        connection.execute(sa.text("INSERT INTO twins (twin_id) VALUES (1)"))
        raise ExplorerStoreError("the disk is full")

    with pytest.raises(ExplorerStoreError, match="disk is full"):
        store.apply_block(first, Position(1, "11" * 32, 200, 1), fails)
    assert store.position() == first
    assert store.dump()["twins"] == []
    with pytest.raises(Exception, match="indexes chain 'zgrid-dev'"):
        store.pin(ChainIdentity("other", "ab" * 32, "{}"))
    store.clear()
    assert store.position() is None and store.identity() is None
    store.close()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mysql://db", "use sqlite:///path/to/file.db or postgresql://"),
        ("explorer.db", "use sqlite:///path/to/file.db"),
        ("sqlite:///", "a SQLite database is sqlite:///path/to/file.db"),
        ("sqlite://relative.db", "a SQLite database is sqlite:///path"),
    ],
)
def test_database_urls_of_another_kind_are_refused(text: str, words: str) -> None:
    with pytest.raises(ExplorerStoreError, match=words.replace("/", "/").replace(".", r"\.")):
        database_url(text)


def test_postgresql_urls_use_psycopg_and_an_unreachable_server_is_one_clear_error() -> None:
    assert database_url("postgresql://me@db:5432/grid") == "postgresql+psycopg://me@db:5432/grid"
    assert database_url("postgres://me@db/grid") == "postgresql+psycopg://me@db/grid"
    store = ExplorerStore("postgresql://nobody:secret@127.0.0.1:9/none")
    with pytest.raises(ExplorerStoreError) as caught:
        store.migrate()
    message = str(caught.value)
    assert "cannot prepare the database" in message and "secret" not in message
    store.close()


def test_a_sqlite_database_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExplorerStoreError, match="no directory"):
        ExplorerStore(f"sqlite:///{tmp_path / 'missing' / 'explorer.db'}")
