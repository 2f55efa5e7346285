"""The lazy, read-only FUSE mount of an flist (pyfuse3 on asyncio).

Metadata comes from the .fl; a file's blocks are fetched on first read through a
:class:`BlockFetcher`, so a container can start before its image is downloaded.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zgrid.flist.errors import MountError
from zgrid.flist.fetch import BlockFetcher
from zgrid.flist.meta import FlistReader
from zgrid.flist.safety import check_tree

if TYPE_CHECKING:
    from zgrid.flist.fuse import FlistOperations

__all__ = ["mount"]


async def _serve(
    mountpoint: Path, operations: FlistOperations, ready: Callable[[], None] | None
) -> None:
    import pyfuse3  # noqa: PLC0415 - libfuse is loaded only by the process that mounts

    options = set(pyfuse3.default_options)
    options |= {"fsname=zgrid-flist", "subtype=flist", "ro", "nodev"}
    if os.geteuid() == 0:
        options.add("allow_other")  # containers run as other users than the mounter
    try:
        pyfuse3.init(operations, str(mountpoint), options)
    except RuntimeError as exc:
        raise MountError(f"cannot mount on {mountpoint}: {exc}") from exc
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, pyfuse3.terminate)
    if ready is not None:
        ready()
    try:
        await pyfuse3.main()
    finally:
        pyfuse3.close(unmount=True)


def mount(
    flist: Path,
    mountpoint: Path,
    fetcher: BlockFetcher,
    *,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``flist`` on ``mountpoint`` until SIGINT/SIGTERM or an unmount; the fetcher
    is closed on the way out, whatever happened."""
    # pyfuse3 (and trio, which it brings) is loaded only by the process that mounts.
    import pyfuse3.asyncio  # noqa: PLC0415

    from zgrid.flist.fuse import FlistOperations  # noqa: PLC0415

    async def main() -> None:
        try:
            if not mountpoint.is_dir():
                raise MountError(f"{mountpoint} is not a directory")
            with FlistReader(flist) as reader:
                # Refuse hostile metadata here too; device nodes stay inert under "nodev".
                check_tree(reader, allow_devices=True, allow_setuid=True)
                pyfuse3.asyncio.enable()
                await _serve(mountpoint, FlistOperations(reader, fetcher), ready)
        finally:
            await fetcher.close()

    asyncio.run(main())
