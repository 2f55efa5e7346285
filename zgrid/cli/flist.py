"""`zgrid flist`: pack trees and images into flists, unpack, inspect, mount, push and pull."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from zgrid.cli.ledger_options import (
    DEFAULT_HUB,
    DEFAULT_LEDGER,
    HubOption,
    JsonOption,
    LedgerOption,
    ledger_client,
)
from zgrid.cli.output import emit_json, err_console, out_console
from zgrid.cli.store_access import signing_identity

if TYPE_CHECKING:
    from rich.progress import ProgressColumn

    from zgrid.flist import BlockFetcher, Route

# The flist package (HTTP stores, the hub client), the ledger's client and rich's progress
# bars are imported by the commands that use them, so the others start without them.

app = typer.Typer(
    help="flists: container and VM images as metadata plus shared blocks.", no_args_is_help=True
)

T = TypeVar("T")

StoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--store",
        "-s",
        metavar="[xx-yy=]URL",
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
    from zgrid.flist import parse_route  # noqa: PLC0415  # the flist package is heavy: load it on use

    return [parse_route(spec) for spec in stores or []]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _bytes() -> tuple[ProgressColumn, ...]:
    from rich.progress import DownloadColumn, TransferSpeedColumn  # noqa: PLC0415  # bars only

    return (DownloadColumn(), TransferSpeedColumn())


def _blocks() -> tuple[ProgressColumn, ...]:
    from rich.progress import TextColumn  # noqa: PLC0415  # bars only

    return (TextColumn("{task.completed}/{task.total} blocks"),)


@contextmanager
def _progress(
    label: str,
    columns: Callable[[], tuple[ProgressColumn, ...]],
    *,
    quiet: bool,
    total: int | None = None,
) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr, none when quiet or not a terminal; yields ``update(**fields)``
    (``advance=n``, or ``completed=done, total=n``)."""
    if quiet or not err_console.is_terminal:
        yield lambda **_fields: None
        return
    from rich.progress import (  # noqa: PLC0415  # only a terminal gets a progress bar
        BarColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *columns(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        yield functools.partial(progress.update, progress.add_task(label, total=total))


def _document(report: Any) -> dict[str, Any]:
    """A report dataclass as JSON-ready data (paths as strings)."""
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in dataclasses.asdict(report).items()
    }


def _blocks_done(update: Callable[..., None]) -> Callable[[int, int], None]:
    return lambda done, total: update(completed=done, total=total)


def _parse_tags(tags: list[str] | None) -> dict[str, str]:
    from zgrid.flist import FlistError  # noqa: PLC0415  # the flist package is heavy: load it on use

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
        list[str] | None,
        typer.Option("--tag", "-t", metavar="KEY=VALUE", help="key=value to record in the flist."),
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", min=1, help="Files at a time.")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Pack a directory or an image archive into an flist; blocks go to the stores."""
    from zgrid.flist import (  # noqa: PLC0415  # the flist package is heavy: load it on use
        FlistError,
        Router,
        image_entries,
        pack_entries,
        walk_directory,
    )

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
                    entries,
                    output,
                    router,
                    tags=tags,
                    on_progress=lambda n: update(advance=n),
                    parallel=parallel,
                )
            finally:
                await router.close()

        with _progress(f"packing {source.name}", _bytes, total=total, quiet=as_json) as update:
            report = _run(run())
    if as_json:
        emit_json(_document(report))
    else:
        out_console.print(
            f"packed {report.files} files, {report.bytes} bytes in {report.unique_blocks} "
            f"blocks into {report.path}"
        )


def _fetcher(flist: Path, store: list[str] | None, cache: Path | None) -> BlockFetcher:
    from zgrid.flist import BlockFetcher, FlistError, FlistReader, Router  # noqa: PLC0415  # the flist package is heavy: load it on use

    routes = _routes(store)
    if not routes:
        with FlistReader(flist) as reader:
            routes = reader.routes()
        if not routes:
            raise FlistError(f"{flist} names no block store; give one with --store")
    return BlockFetcher(Router.from_routes(routes), cache=cache)


@app.command(name="unpack")
def unpack_command(
    *,
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    target: Annotated[Path, typer.Argument(help="A new or empty directory.")],
    store: StoreOption = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Shared block cache (default: none).")
    ] = None,
    allow_devices: Annotated[
        bool,
        typer.Option("--allow-devices", help="Make the flist's device nodes (needs root)."),
    ] = False,
    allow_setuid: Annotated[
        bool,
        typer.Option("--allow-setuid", help="Keep setuid/setgid bits of the flist's files."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recreate the flist's tree in a directory (blocks from the flist's own stores).

    Device nodes and setuid/setgid files are refused unless allowed: an image from
    someone else must not make them on this host."""
    from zgrid.flist import FlistReader, unpack  # noqa: PLC0415  # the flist package is heavy: load it on use

    with FlistReader(flist) as reader:
        total = sum(inode.size for inode in reader.inodes() if inode.is_file)
    fetcher = _fetcher(flist, store, cache)

    async def run() -> Any:
        try:
            return await unpack(
                flist,
                target,
                fetcher,
                on_progress=lambda n: update(advance=n),
                allow_devices=allow_devices,
                allow_setuid=allow_setuid,
            )
        finally:
            await fetcher.close()

    with _progress(f"unpacking {flist.name}", _bytes, total=total, quiet=as_json) as update:
        report = _run(run())
    if as_json:
        emit_json({**_document(report), "fetched_blocks": fetcher.fetched})
    else:
        out_console.print(f"unpacked {report.files} files, {report.bytes} bytes into {target}")


@app.command()
def inspect(
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    tree: Annotated[bool, typer.Option("--tree", help="Also list every path.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an flist's tags, stores, size and (with --tree) its paths."""
    from zgrid.flist import FlistReader, check_tree  # noqa: PLC0415  # the flist package is heavy: load it on use

    with FlistReader(flist) as reader:
        checked = check_tree(reader, allow_devices=True, allow_setuid=True)
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
    from zgrid.flist import mount  # noqa: PLC0415  # the flist package is heavy: load it on use

    fetcher = _fetcher(flist, store, cache)
    mount(
        flist,
        mountpoint,
        fetcher,
        ready=lambda: err_console.print(f"mounted {flist} on {mountpoint}"),
    )


RetryOption = Annotated[
    float,
    typer.Option(
        "--retry-for", min=0, help="Keep retrying an unreachable or failing hub this long (s)."
    ),
]


def _own_twin(ctx: typer.Context, ledger: str) -> tuple[Any, int]:
    """This user's identity and twin id (from the ledger)."""
    from zgrid.flist import FlistError  # noqa: PLC0415  # the flist package is heavy: load it on use

    identity = signing_identity(ctx)
    with ledger_client(ctx, ledger, sign=False) as chain:
        twin = chain.twin_of(identity.address)
    if twin is None:
        raise FlistError(f"account {identity.address} has no twin yet (`zgrid twin create`)")
    return identity, int(twin["id"])


_HASH = re.compile(r"^[0-9a-f]{64}$")


@app.command()
def push(
    ctx: typer.Context,
    *,
    flist: Annotated[Path, typer.Argument(help="The .fl file.")],
    name: Annotated[str, typer.Argument(help="Its name on the hub, e.g. busybox.fl.")],
    hub: HubOption = DEFAULT_HUB,
    store: StoreOption = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    retry_for: RetryOption = 60,
    as_json: JsonOption = False,
) -> None:
    """Publish an flist under your twin: upload the blocks the hub lacks, then the flist."""
    from zgrid.flist import FlistReader, Router  # noqa: PLC0415  # the flist package is heavy: load it on use
    from zgrid.flist import hub as flist_hub  # noqa: PLC0415  # the hub client is heavy: load it on use

    identity, twin_id = _own_twin(ctx, ledger)
    fetcher_routes = _routes(store)
    if not fetcher_routes:
        with FlistReader(flist) as reader:
            fetcher_routes = reader.routes()
    router = Router.from_routes(fetcher_routes)

    async def run() -> Any:
        async with flist_hub.HubClient(
            hub, identity=identity, twin_id=twin_id, retry_for=retry_for
        ) as client:
            try:
                return await client.push(flist, name, router, on_progress=_blocks_done(update))
            finally:
                await router.close()

    with _progress(f"pushing {name}", _blocks, quiet=as_json) as update:
        report = _run(run())
    if as_json:
        emit_json(_document(report))
    else:
        out_console.print(
            f"pushed {report.owner}/{report.name} ({report.uploaded} of {report.blocks} blocks "
            f"uploaded): {report.url}"
        )


@app.command()
def pull(
    ctx: typer.Context,
    *,
    source: Annotated[
        str,
        typer.Argument(
            help="NAME (your own flist), TWIN/NAME (twin id and flist name), or a content hash."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .fl.")],
    blocks: Annotated[
        list[str] | None,
        typer.Option(
            "--blocks",
            metavar="[xx-yy=]URL",
            help="Also copy every block into this store ([xx-yy=]URL).",
        ),
    ] = None,
    hub: HubOption = DEFAULT_HUB,
    ledger: LedgerOption = DEFAULT_LEDGER,
    retry_for: RetryOption = 60,
    as_json: JsonOption = False,
) -> None:
    """Download a published flist, optionally with all its blocks. By name it is checked
    against its publisher's signature (the twin's key on the ledger); by hash, against
    the hash."""
    from zgrid.chain import ChainClient  # noqa: PLC0415  # the ledger's client is heavy: load it on use
    from zgrid.flist import FlistError, Router  # noqa: PLC0415  # the flist package is heavy: load it on use
    from zgrid.flist import hub as flist_hub  # noqa: PLC0415  # the hub client is heavy: load it on use

    by_hash = bool(_HASH.match(source))
    owner_text, sep, name = source.partition("/")
    if sep and not re.fullmatch(r"[0-9]+", owner_text):
        raise FlistError(f"{source!r}: the owner is a twin id, e.g. 7/busybox.fl")
    if by_hash:
        owner = None
    elif sep:
        owner = int(owner_text)
    else:
        owner, name = _own_twin(ctx, ledger)[1], source
    blocks_to = Router.from_routes(_routes(blocks)) if blocks else None

    async def run() -> Any:
        chain = ChainClient(ledger)
        try:
            async with flist_hub.HubClient(hub, ledger=chain, retry_for=retry_for) as client:
                if owner is not None:
                    return await client.pull(
                        owner,
                        name,
                        output,
                        blocks_to=blocks_to,
                        on_progress=_blocks_done(update),
                    )
                return await client.pull_by_hash(
                    source, output, blocks_to=blocks_to, on_progress=_blocks_done(update)
                )
        finally:
            await chain.close()
            if blocks_to is not None:
                await blocks_to.close()

    with _progress(f"pulling {source}", _blocks, quiet=as_json) as update:
        report = _run(run())
    if as_json:
        emit_json(_document(report))
    else:
        extra = f", {report.copied} of {report.blocks} blocks copied" if blocks_to else ""
        out_console.print(f"pulled {source} into {report.path} ({report.hash}){extra}")


@app.command(name="ls")
def list_command(
    ctx: typer.Context,
    *,
    owner: Annotated[int | None, typer.Argument(help="A twin id; default: your own.")] = None,
    owners: Annotated[
        bool, typer.Option("--owners", help="List every owner and how many flists each has.")
    ] = False,
    hub: HubOption = DEFAULT_HUB,
    ledger: LedgerOption = DEFAULT_LEDGER,
    retry_for: RetryOption = 5,
    as_json: JsonOption = False,
) -> None:
    """List the flists on a hub: yours, one twin's, or (--owners) who published."""
    from zgrid.flist import FlistError  # noqa: PLC0415  # the flist package is heavy: load it on use
    from zgrid.flist import hub as flist_hub  # noqa: PLC0415  # the hub client is heavy: load it on use

    if owners and owner is not None:
        raise FlistError("give a twin id or --owners, not both")
    if owner is None and not owners:
        owner = _own_twin(ctx, ledger)[1]

    async def run() -> Any:
        async with flist_hub.HubClient(hub, retry_for=retry_for) as client:
            return await client.list(owner) if owner is not None else await client.list()

    entries = _run(run())
    if owner is None:
        rows = [{"owner": e.owner, "count": e.count} for e in entries]
        lines = [f"{row['owner']:>8}  {row['count']} flists" for row in rows]
    else:
        rows = [
            {"name": e.name, "hash": e.hash, "size": e.size, "updated": e.updated} for e in entries
        ]
        lines = [f"{row['name']:<40} {row['size']:>10}  {row['hash']}" for row in rows]
    if as_json:
        emit_json(rows)
    else:
        for line in lines:
            out_console.print(line)
