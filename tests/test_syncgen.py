"""The blocking wrappers are generated from their async classes and kept up to date."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from zgrid.syncgen import render

ROOT = Path(__file__).resolve().parent.parent

WRAPPERS = [
    ("zgrid.chain.client", "ChainClient", "SyncChainClient", "zgrid/chain/sync.py"),
    ("zgrid.client.grid", "Grid", "SyncGrid", "zgrid/client/sync.py"),
]


@pytest.mark.parametrize(("module", "name", "sync_name", "path"), WRAPPERS, ids=str)
def test_the_committed_wrapper_is_what_the_generator_writes(
    module: str, name: str, sync_name: str, path: str
) -> None:
    target = getattr(importlib.import_module(module), name)
    expected = render(target, sync_name, doc=f"{sync_name}: the blocking form of {name}.")
    assert (ROOT / path).read_text() == expected, (
        f"{path} is out of date: run `python -m zgrid.syncgen {module}:{name} {sync_name} > {path}`"
    )


def test_a_new_coroutine_shows_in_the_wrapper() -> None:
    class Thing:
        async def close(self) -> None: ...

        async def fetch(self, key: str, *, fresh: bool = False) -> int:
            return len(key) + fresh

    source = render(Thing, "SyncThing", doc="SyncThing.")
    assert "def fetch(self, key: str, *, fresh: bool = False) -> int:" in source
    assert "self._call(self._target.fetch, key, fresh=fresh)" in source
