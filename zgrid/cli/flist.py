"""`zgrid flist`: pack trees and images into flists, unpack, inspect, mount, push and pull."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from zgrid.cli.ledger_options import JsonOption
from zgrid.cli.output import emit_json, err_console, out_console
from zgrid.flist import (
    BlockFetcher,
    FlistError,
    FlistReader,
    Route,
    Router,
    check_tree,
    image_entries,
    pack_entries,
    parse_route,
    unpack,
    walk_directory,
)

app = typer.Typer(
    help="flists: container and VM images as metadata plus shared blocks.", no_args_is_help=True
)

T = TypeVar("T")

StoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--store",
        "-s",
        help="Block store, [xx-yy=]URL: dir:///path, zdb://[user:pass@]host[:port]/ns, "
        "http(s)://... Repeat to shard by id range or replicate.",
    ),
]
CacheOption = Annotated[
    Path,
    typer.Option("--cache", help="Shared on-disk block cache.", show_default=True),
]
DEFAULT_CACHE = Path("/var/cache/zgrid/blocks")


def _routes(stores: list[str] | None) -> list[Route]:
    return [parse_route(spec) for spec in stores or []]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@contextmanager
def _progress(label: str, total: int | None, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr; ``advance(n)`` moves it."""
    if quiet or not err_console.is_terminal:
        yield lambda _n: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _parse_tags(tags: list[str] | None) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise FlistError(f"--tag must be key=value, got {tag!r}")
        parsed[key] = value
    return parsed


@app.command()
def pack(
    *,
    source: Annotated[
        Path, typer.Argument(help="A directory, or a Docker (docker save) or OCI image archive.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .fl file to write.")],
    store: StoreOption = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="key=value to record in the flist.")
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", min=1, help="Files at a time.")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Pack a directory or an image archive into an flist; blocks go to the stores."""
    routes = _routes(store)
    if not routes:
        raise FlistError("give at least one --store for the blocks")
    tags = _parse_tags(tag)
    with tempfile.TemporaryDirectory(prefix="zgrid-flist-") as staging:
        if source.is_dir():
            entries = list(walk_directory(source))
        elif source.is_file():
            entries, image_tags = image_entries(source, Path(staging))
            tags = {**image_tags, **tags}
        else:
            raise FlistError(f"{source}: no such directory or image archive")
        total = sum(entry.size for entry in entries if entry.source is not None)
        router = Router.from_routes(routes)

        async def run() -> Any:
            try:
                return await pack_entries(
                    entries, output, router, tags=tags, on_progress=advance, parallel=parallel
                )
            finally:
                await router.close()

        with _progress(f"packing {source.name}", total, quiet=as_json) as advance:
            report = _run(run())
    if as_json:
        emit_json(
            {
                "flist": str(report.path),
                "inodes": report.inodes,
                "files": report.files,
                "bytes": report.bytes,
                "blocks": report.blocks,
                "unique_blocks": report.unique_blocks,
                "tags": report.tags,
            }
        )
    else:
        out_console.print(
            f"packed {report.files} files, {report.bytes} bytes in {report.unique_blocks} "
            f"blocks into {report.path}"
        )


def _fetcher(flist: Path, store: list[str] | None, cache: Path | None) -> BlockFetcher:
    routes = _routes(store)
    if not routes:
        with FlistReader(flist) as reader:
            routes = reader.routes()
        if not routes:
            raise FlistError(f"{flist} names no block store; give one with --store")
    return BlockFetcher(Router.from_routes(routes), cache=cache)


@app.command(name="unpack")
def unpack_command(
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    target: Annotated[Path, typer.Argument(help="A new or empty directory.")],
    store: StoreOption = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Shared block cache (default: none).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recreate the flist's tree in a directory (blocks from the flist's own stores)."""
    with FlistReader(flist) as reader:
        total = sum(inode.size for inode in reader.inodes() if inode.is_file)
    fetcher = _fetcher(flist, store, cache)

    async def run() -> Any:
        try:
            return await unpack(flist, target, fetcher, on_progress=advance)
        finally:
            await fetcher.close()

    with _progress(f"unpacking {flist.name}", total, quiet=as_json) as advance:
        report = _run(run())
    if as_json:
        emit_json(
            {
                "target": str(report.target),
                "inodes": report.inodes,
                "files": report.files,
                "bytes": report.bytes,
                "fetched_blocks": fetcher.fetched,
            }
        )
    else:
        out_console.print(f"unpacked {report.files} files, {report.bytes} bytes into {target}")


@app.command()
def inspect(
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    tree: Annotated[bool, typer.Option("--tree", help="Also list every path.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an flist's tags, stores, size and (with --tree) its paths."""
    with FlistReader(flist) as reader:
        checked = check_tree(reader, allow_devices=True)
        files = [inode for _, inode in checked.entries if inode.is_file]
        document: dict[str, Any] = {
            "flist": str(flist),
            "inodes": len(checked.entries),
            "files": len(files),
            "bytes": sum(inode.size for inode in files),
            "blocks": len(reader.all_blocks()),
            "tags": reader.tags(),
            "routes": [{"start": r.start, "end": r.end, "url": r.url} for r in reader.routes()],
        }
        if tree:
            document["paths"] = [
                {
                    "path": "/" + path,
                    "mode": f"{inode.mode:o}",
                    "uid": inode.uid,
                    "gid": inode.gid,
                    "size": inode.size,
                    "mtime": inode.mtime,
                }
                for path, inode in checked.entries
            ]
    if as_json:
        emit_json(document)
        return
    out_console.print(
        f"{flist}: {document['inodes']} inodes, {document['files']} files, "
        f"{document['bytes']} bytes, {document['blocks']} blocks"
    )
    for key, value in sorted(document["tags"].items()):
        out_console.print(f"tag {key} = {value}")
    for route in document["routes"]:
        out_console.print(f"store {route['start']:02x}-{route['end']:02x} {route['url']}")
    for item in document.get("paths", []):
        out_console.print(
            f"{item['mode']:>7} {item['uid']}:{item['gid']} {item['size']:>10} {item['path']}"
        )


@app.command(name="mount")
def mount_command(
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    mountpoint: Annotated[Path, typer.Argument(help="An existing directory.")],
    store: StoreOption = None,
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Mount an flist read-only; blocks are fetched on first read. Runs until unmounted."""
    from zgrid.flist.mount import mount  # noqa: PLC0415 - loads libfuse only when mounting

    fetcher = _fetcher(flist, store, cache)
    mount(
        flist,
        mountpoint,
        fetcher,
        ready=lambda: err_console.print(f"mounted {flist} on {mountpoint}"),
    )
