"""The throwaway PostgreSQL server of the tests is a real one, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.postgres import (
    PostgresCluster,
    PostgresError,
    postgres_cluster,  # noqa: F401  # the fixture postgres_database uses
    postgres_database,  # noqa: F401
    require_postgres,
)


@pytest.fixture
def cluster(tmp_path: Path) -> PostgresCluster:
    require_postgres()
    return PostgresCluster(log=tmp_path / "postgres.log")


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory any user may enter (as root, tmp_path's parents are closed to others)."""
    path = Path(tempfile.mkdtemp(prefix="zgrid-pg-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_cluster_stores_rows_and_stop_removes_everything(cluster: PostgresCluster) -> None:
    started = time.monotonic()
    cluster.start()
    assert time.monotonic() - started < 15
    try:
        root, port = cluster.root, cluster.port
        assert root is not None and root.is_dir()
        url = cluster.create_database("explorer")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/explorer"
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    sa.text("CREATE TABLE nodes (id integer PRIMARY KEY, city text)")
                )
                connection.execute(
                    sa.text("INSERT INTO nodes VALUES (:id, :city)"),
                    [{"id": 1, "city": "Gent"}, {"id": 2, "city": "Cairo"}],
                )
            with engine.connect() as connection:
                rows = connection.execute(sa.text("SELECT id, city FROM nodes ORDER BY id"))
                assert [tuple(row) for row in rows] == [(1, "Gent"), (2, "Cairo")]
                assert connection.execute(sa.text("SHOW fsync")).scalar() == "off"
                encoding = connection.execute(sa.text("SHOW server_encoding")).scalar()
                assert encoding == "UTF8"
        finally:
            engine.dispose()
        with psycopg.connect(cluster.dsn) as connection:
            assert connection.execute("SELECT current_user").fetchone() == ("postgres",)
    finally:
        cluster.stop()
    assert not root.exists()
    assert _refused(port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres connect_timeout=2")
    assert cluster.log_copy is not None and "database system is ready" in (
        cluster.log_copy.read_text()
    )
    cluster.stop()  # twice is harmless


def test_a_failing_start_names_the_tool_and_shows_its_log(open_parent: Path) -> None:
    require_postgres()
    cluster = PostgresCluster(parent=open_parent, settings={"shared_buffers": "not-a-size"})
    with pytest.raises(PostgresError, match="pg_ctl failed") as failure:
        cluster.start()
    assert "shared_buffers" in str(failure.value)  # the server's own complaint, from its log
    assert cluster.root is None
    assert list(open_parent.iterdir()) == []


def test_bad_database_names_are_refused(postgres_cluster: PostgresCluster) -> None:  # noqa: F811
    with pytest.raises(PostgresError, match="bad database name"):
        postgres_cluster.create_database('x"; DROP DATABASE postgres; --')
    with pytest.raises(PostgresError, match="bad database name"):
        postgres_cluster.drop_database("Upper")


def _databases(cluster: PostgresCluster) -> set[str]:
    with psycopg.connect(cluster.dsn) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}


def test_dropping_a_database_ends_its_sessions(postgres_cluster: PostgresCluster) -> None:  # noqa: F811
    postgres_cluster.create_database("busy")
    session = psycopg.connect(postgres_cluster.dsn.replace("dbname=postgres", "dbname=busy"))
    try:
        assert session.execute("SELECT 1").fetchone() == (1,)
        assert "busy" in _databases(postgres_cluster)
        postgres_cluster.drop_database("busy")  # while this session is still open
    finally:
        session.close()
    assert "busy" not in _databases(postgres_cluster)
    postgres_cluster.drop_database("busy")  # gone already: nothing to do


def test_parent_directory_the_server_user_cannot_enter_is_refused(tmp_path: Path) -> None:
    require_postgres()
    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another user")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(PostgresError, match="not searchable"):
        PostgresCluster(parent=closed).start()
    assert list(closed.iterdir()) == []


def test_database_fixture_gives_a_fresh_database_each_test(
    postgres_cluster: PostgresCluster,  # noqa: F811
    postgres_database: str,  # noqa: F811
) -> None:
    engine = sa.create_engine(postgres_database)
    try:
        with engine.begin() as connection:
            tables = connection.execute(
                sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar()
            assert tables == 0
            connection.execute(sa.text("CREATE TABLE t (x int)"))
    finally:
        engine.dispose()
    assert postgres_database.startswith(postgres_cluster.database_url("test_"))
