"""A ledger and a hub in real processes with a busybox flist pushed to them, for the node's
tests that need an image to run (plain context manager: usable from any fixture)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.chain.conftest import ClientFactory, LedgerProcess, running_ledger
from tests.conftest import require_root
from tests.flist.conftest import HubProcess, Twin, running_hub
from tests.flist.rootfs import build_busybox_root
from zgrid.flist import Router, pack_directory, parse_route
from zgrid.flist.hub import HubClient

__all__ = ["HubWithFlist", "running_hub_with_busybox"]


@dataclass
class HubWithFlist:
    """``flist_url`` serves the busybox tree ``source`` (see tests/flist/rootfs.py)."""

    ledger: LedgerProcess
    hub: HubProcess
    twin: Twin
    source: Path
    flist_url: str
    flist_hash: str
    work: Path

    @property
    def url(self) -> str:
        return self.hub.url

    def push(self, source: Path, name: str, tags: dict[str, str] | None = None) -> tuple[str, str]:
        """Pack ``source`` and publish it as ``name`` under the same twin: (url, hash)."""
        return asyncio.run(self.apush(source, name, tags))

    async def apush(
        self, source: Path, name: str, tags: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """:meth:`push` from a coroutine."""
        return await _pack_and_push(self.hub.url, self.twin, source, name, self.work, tags=tags)


async def _pack_and_push(
    hub_url: str, twin: Twin, source: Path, name: str, work: Path, *, tags: dict[str, str] | None
) -> tuple[str, str]:
    work.mkdir(parents=True, exist_ok=True)
    flist = work / f"{name}.{os.urandom(4).hex()}.fl"
    router = Router.from_routes([parse_route(f"dir://{work}/store")])
    try:
        await pack_directory(source, flist, router, tags=tags)
        async with HubClient(hub_url, identity=twin.identity, twin_id=twin.twin_id) as client:
            report = await client.push(flist, name, router)
    finally:
        await router.close()
    return report.url, report.hash


@contextmanager
def running_hub_with_busybox(tmp: Path, *, name: str = "busybox.fl") -> Iterator[HubWithFlist]:
    """A ledger, a twin on it, a hub, and the busybox tree pushed as ``name``. Needs root
    (the tree has a device node and odd owners)."""
    require_root()
    with running_ledger(tmp / "ledger") as ledger:
        factory = ClientFactory(ledger.url)
        try:
            client = factory()
            twin = Twin(client.identity, client.create_twin())
        finally:
            factory.close()
        with running_hub(tmp, ledger.url) as hub:
            source = tmp / "busybox"
            build_busybox_root(source)
            work = tmp / "publish"
            url, flist_hash = asyncio.run(
                _pack_and_push(hub.url, twin, source, name, work, tags=None)
            )
            yield HubWithFlist(ledger, hub, twin, source, url, flist_hash, work)
