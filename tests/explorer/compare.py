"""Two explorer databases side by side: index a ledger into each, compare rows and answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from zgrid.chain import ChainClient
from zgrid.explorer import ExplorerStore, ExplorerView, Indexer, create_app

# Queries both databases must answer alike (paths of the grid proxy's API).
QUERIES = [
    "/nodes?ret_count=true",
    "/nodes?status=up&sort_by=free_mru&sort_order=desc",
    "/nodes?status=down,standby",
    "/nodes?country=egypt&free_hru=1",
    "/nodes?farm_ids=1,3&size=2&page=2&ret_count=true",
    "/nodes?healthy=false",
    "/nodes?rentable=true&sort_by=status",
    "/nodes?city_contains=o&sort_by=country",
    "/nodes/1",
    "/gateways",
    "/farms?ret_count=true&sort_by=free_ips&sort_order=desc",
    "/farms?node_status=up&country=United%20States",
    "/twins?size=5&page=2",
    "/contracts?state=created,graceperiod&ret_count=true",
    "/contracts?type=node&sort_by=created_at&sort_order=desc",
    "/contracts/5",
    "/contracts/1/bills?ret_count=true&size=7&page=3",
    "/public_ips?free=true",
    "/stats",
    "/stats?status=up",
]


def index_until(
    store: ExplorerStore, url: str, *, until: int | None = None, batch: int = 100
) -> int:
    async def run() -> int:
        async with ChainClient(url) as chain:
            indexer = Indexer(store, chain, until=until, header_batch=batch)
            await indexer.catch_up()
            return indexer.status.height

    return asyncio.run(run())


def fresh_store(path: Path) -> ExplorerStore:
    store = ExplorerStore(f"sqlite:///{path}")
    store.migrate()
    return store


def answers(store: ExplorerStore) -> dict[str, Any]:
    client = TestClient(create_app(ExplorerView(store)))
    found = {}
    for query in QUERIES:
        response = client.get(query)
        assert response.status_code in (200, 404), (query, response.text)
        found[query] = (response.status_code, response.json(), response.headers.get("count"))
    return found


def normal(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    # SQLite gives booleans back as 0/1, PostgreSQL as False/True
    return {
        table: [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows]
        for table, rows in dump.items()
    }
