"""Publish the base images on the devnet's hub under its publisher twin, once each.

An image the hub already lists for the publisher is left alone, so a second `up` costs a
listing; a missing one is built (from the cache when it can be), packed and pushed.
Bare names (``flist: busybox`` in a spec) resolve to these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from zgrid.devnet.accounts import Accounts
from zgrid.devnet.errors import DevnetStartFailed
from zgrid.devnet.images import BaseImage, base_images
from zgrid.devnet.layout import DevnetState, Layout
from zgrid.flist import FlistError, Router, pack_directory, parse_route
from zgrid.flist import hub as flist_hub

__all__ = ["publish_images"]

Progress = Callable[[str], None]


async def publish_images(
    state: DevnetState,
    layout: Layout,
    accounts: Accounts,
    progress: Progress,
    images: list[BaseImage] | None = None,
) -> list[str]:
    """Make sure the hub has every base image; returns the names it had to publish."""
    wanted = base_images() if images is None else images
    async with flist_hub.HubClient(
        state.hub_url, identity=accounts.publisher, twin_id=accounts.publisher_twin
    ) as hub:
        listed = {entry.name for entry in await hub.list(accounts.publisher_twin)}
        published = []
        for image in wanted:
            if image.name in listed:
                continue
            await _publish(hub, image, layout.images, progress)
            published.append(image.name)
    progress(f"images on the hub: {', '.join(image.name for image in wanted)}")
    return published


async def _publish(
    hub: flist_hub.HubClient, image: BaseImage, work: Path, progress: Progress
) -> None:
    work.mkdir(parents=True, exist_ok=True)
    source = await asyncio.to_thread(image.build, work, progress)
    output = work / f"{image.name}.fl"
    router = Router.from_routes([parse_route(f"dir://{work}/blocks")])
    packed = shown = 0

    def packing(length: int) -> None:
        nonlocal packed, shown
        packed += length
        if packed - shown >= 16 * 1024 * 1024:
            shown = packed
            progress(f"{image.name}: packing, {packed // (1024 * 1024)} MiB")

    try:
        progress(f"{image.name}: packing {source}")
        await pack_directory(source, output, router, tags=image.tags, on_progress=packing)
        progress(f"{image.name}: pushing to the hub")
        await hub.push(output, image.name, router)
    except FlistError as exc:
        raise DevnetStartFailed(f"cannot publish the {image.name} image: {exc}") from exc
    finally:
        await router.close()
