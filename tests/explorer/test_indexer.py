"""The indexer against a real ledger process: SQLite and PostgreSQL index the same grid and
answer the same queries; a kill -9 mid-stream resumes to what a fresh rebuild makes; an
event applied twice changes nothing; a block altered on its way is refused whole."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.explorer.compare import answers as _answers
from tests.explorer.compare import fresh_store as _fresh
from tests.explorer.compare import index_until as _index
from tests.explorer.compare import normal as _normal
from tests.explorer.fixtures import ExplorerProcess
from tests.explorer.story import Story
from tests.postgres import PostgresCluster, postgres_cluster  # noqa: F401
from tests.processes import zgrid_here
from zgrid.chain import ChainClient, ChainEvent
from zgrid.explorer import (
    ExplorerStore,
    Indexer,
    LedgerMismatch,
    UntrustedBlock,
)
from zgrid.explorer.projection import BlockInfo, apply_events
from zgrid.explorer.store import Position


@pytest.fixture(scope="module")
def sqlite_store(
    story: Story,
    story_ledger: LedgerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExplorerStore]:
    store = _fresh(tmp_path_factory.mktemp("sqlite") / "explorer.db")
    _index(store, story_ledger.url, until=story.height)
    yield store
    store.close()


def test_sqlite_and_postgresql_index_the_same_grid_and_answer_alike(
    story: Story,
    story_ledger: LedgerProcess,
    sqlite_store: ExplorerStore,
    postgres_cluster: PostgresCluster,  # noqa: F811
) -> None:
    postgres = ExplorerStore(postgres_cluster.create_database("explorer"))
    try:
        postgres.migrate()
        assert _index(postgres, story_ledger.url, until=story.height) == story.height
        sqlite_dump, postgres_dump = _normal(sqlite_store.dump()), _normal(postgres.dump())
        assert sqlite_dump == postgres_dump
        assert len(sqlite_dump["nodes"]) == 6 and len(sqlite_dump["bills"]) > 100
        assert _answers(sqlite_store) == _answers(postgres)
    finally:
        postgres.close()


def test_an_indexed_block_is_never_applied_again_and_an_event_applied_twice_changes_nothing(
    story: Story,
    story_ledger: LedgerProcess,
    sqlite_store: ExplorerStore,
    tmp_path: Path,
) -> None:
    twice = _fresh(tmp_path / "twice.db")

    async def apply_each_event_twice() -> None:
        async with ChainClient(story_ledger.url) as chain:
            headers: list[dict[str, Any]] = []
            while len(headers) <= story.height:
                headers += await chain.headers(len(headers), 100)
            events: list[ChainEvent] = []
            while True:
                page = await chain.event_page(events[-1].cursor if events else "0--1", 1000)
                events += page
                if len(page) < 1000 or events[-1].height > story.height:
                    break
        after: Position | None = None
        for document in headers[: story.height + 1]:
            header = document["header"]
            mine = [e for e in events if e.height == header["height"]]
            block = BlockInfo(height=header["height"], timestamp=header["timestamp"])
            previous = 0 if after is None else after.timestamp

            def apply(
                connection: Any, mine: Any = mine, block: Any = block, previous: int = previous
            ) -> None:
                doubled = [copy for event in mine for copy in (event, event)]
                apply_events(connection, doubled, block, previous_time=previous)

            position = Position(
                header["height"],
                document["hash"],
                header["timestamp"],
                (0 if after is None else after.events) + len(mine),
            )
            assert twice.apply_block(after, position, apply)
            # The same block again, from where it started: refused, nothing changes.
            assert not twice.apply_block(after, position, apply)
            after = position

    asyncio.run(apply_each_event_twice())
    ours, theirs = _normal(twice.dump()), _normal(sqlite_store.dump())
    assert not ours.pop("meta")  # the chain's identity is the indexer's, not an event's
    theirs.pop("meta")
    for table in ours:  # one table at a time: a difference is then short to read
        assert ours[table] == theirs[table], table
    twice.close()


def test_an_explorer_killed_mid_stream_resumes_to_what_a_fresh_rebuild_makes(
    story: Story,
    story_ledger: LedgerProcess,
    tmp_path: Path,
) -> None:
    database = tmp_path / "killed.db"
    explorer = ExplorerProcess(
        story_ledger.url,
        f"sqlite:///{database}",
        tmp_path / "explorer.log",
        extra=("--batch", "10"),
    )
    explorer.start()
    try:
        status = explorer.wait_for_height(story.height // 3)
        explorer.kill9()
        assert status["height"] < story.height, "the kill came after the stream ended"
        explorer.start()
        explorer.wait_for_height(story.height)
    finally:
        explorer.stop()
    killed = ExplorerStore(f"sqlite:///{database}")
    position = killed.position()
    assert position is not None and position.height >= story.height
    rebuilt = _fresh(tmp_path / "rebuilt.db")
    _index(rebuilt, story_ledger.url, until=position.height)
    assert _normal(killed.dump()) == _normal(rebuilt.dump())
    killed.close()
    rebuilt.close()


class _Tampering(httpx.AsyncBaseTransport):
    """Between the indexer and the ledger: passes every answer on, changing ``change``."""

    def __init__(self, change: Any) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.change = change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        changed = self.change(request.url.path, json.loads(body))
        return httpx.Response(response.status_code, json=changed)


def _index_through(store: ExplorerStore, url: str, change: Any, *, until: int) -> None:
    async def run() -> None:
        async with ChainClient(url, transport=_Tampering(change)) as chain:
            await Indexer(store, chain, until=until).catch_up()

    asyncio.run(run())


def test_a_block_altered_on_its_way_is_refused_and_nothing_of_it_is_stored(
    story: Story,
    story_ledger: LedgerProcess,
    tmp_path: Path,
) -> None:
    target = 40

    def more_memory(path: str, body: Any) -> Any:
        if path == "/events":
            for event in body:
                if event["height"] == target and event["name"] == "NodeUptimeReported":
                    event["data"]["uptime"] += 1
        return body

    store = _fresh(tmp_path / "events.db")
    with pytest.raises(UntrustedBlock, match=f"block {target} .*events root"):
        _index_through(store, story_ledger.url, more_memory, until=100)
    position = store.position()
    assert position is not None and position.height == target - 1

    def later(path: str, body: Any) -> Any:
        if path == "/blocks":
            for signed in body:
                if signed["header"]["height"] == target:
                    signed["header"]["timestamp"] += 1
        return body

    store = _fresh(tmp_path / "header.db")
    with pytest.raises(UntrustedBlock, match=f"block {target} .*signature"):
        _index_through(store, story_ledger.url, later, until=100)
    position = store.position()
    assert position is not None and position.height == target - 1


def test_a_database_of_another_chain_or_validator_is_refused(
    story: Story,
    story_ledger: LedgerProcess,
    sqlite_store: ExplorerStore,
    tmp_path: Path,
) -> None:
    url = sqlite_store.url
    with running_ledger(tmp_path) as other:
        result = zgrid_here("explorer", "index", "--ledger", other.url, "--db", url)
        assert result.returncode == 1
        assert "indexes another chain" in (result.stdout + result.stderr) and "--rebuild" in (
            result.stdout + result.stderr
        )

    async def trusting(validator: str) -> None:
        async with ChainClient(story_ledger.url) as chain:
            await Indexer(sqlite_store, chain, validator=validator).prepare()

    with pytest.raises(LedgerMismatch, match="not the trusted"):
        asyncio.run(trusting("ab" * 32))
    result = zgrid_here("explorer", "index", "--ledger", story_ledger.url, "--db", "mysql://x")
    assert result.returncode == 1 and "sqlite:///" in (result.stdout + result.stderr)
    result = zgrid_here("explorer", "index", "--ledger", story_ledger.url, "--validator", "xyz")
    assert result.returncode == 2 and "64 hex digits" in (result.stdout + result.stderr)


def test_the_index_command_shows_where_it_stands(
    story: Story,
    story_ledger: LedgerProcess,
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = zgrid_here(
        "explorer", "index", "--ledger", story_ledger.url, "--db", url, "--until", "50", "--json"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["height"] == 50
    started = time.monotonic()
    result = zgrid_here("explorer", "index", "--ledger", story_ledger.url, "--db", url, "--rebuild")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "indexed to height" in (result.stdout + result.stderr) and time.monotonic() - started < 60
    )
