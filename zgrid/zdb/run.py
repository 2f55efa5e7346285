"""Starting a Zero-DB server from options: the store, the hooks, the event loop, signals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop

from zgrid import __version__
from zgrid.web import ServeError, bind_socket
from zgrid.zdb.context import Limits, ServerContext, Settings
from zgrid.zdb.errors import ZdbError
from zgrid.zdb.formats import MODE_SEQ, MODE_USER
from zgrid.zdb.hooks import Hooks
from zgrid.zdb.resp import MAX_ARGUMENT_SIZE
from zgrid.zdb.server import serve_forever
from zgrid.zdb.store import Store

__all__ = ["ServerOptions", "parse_size", "run_server"]

_SUFFIXES = {"k": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
log = logging.getLogger(__name__)
MODES = {"user": MODE_USER, "seq": MODE_SEQ, "direct": MODE_SEQ}


def parse_size(text: str) -> int:
    """0-db's size syntax: a number with an optional k, M, G or T suffix (powers of 1024)."""
    original = text
    multiplier = 1
    if text and text[-1] in _SUFFIXES:
        multiplier = _SUFFIXES[text[-1]]
        text = text[:-1]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # also "nan", "inf" and "1e400", which float() accepts
        raise ZdbError(f"not a size: {original!r} (a number, optionally followed by k, M, G or T)")
    if value < 0:
        raise ZdbError(f"a size cannot be negative: {original!r}")
    return int(value * multiplier)


@dataclass(frozen=True)
class ServerOptions:
    data: Path = Path("./zdb-data")
    index: Path = Path("./zdb-index")
    listen: str = "::"
    port: int = 9900
    socket: Path | None = None
    dualnet: bool = False
    mode: str | None = None
    datasize: int = 256 * 1024 * 1024
    maxsize: int = 0
    admin: str | None = None
    protect: bool = False
    sync: bool = False
    synctime: int = 0
    hook: str | None = None
    max_clients: int = Limits.max_clients
    idle_timeout: float = Limits.idle_timeout
    max_reply: int = Limits.max_reply
    max_pending: int = Limits.max_pending


def instance_id(options: ServerOptions) -> str:
    if options.socket is not None:
        return f"unix://{options.socket}"
    return f"tcp://{options.listen}:{options.port}"


def run_server(
    options: ServerOptions, *, on_ready: Callable[[list[str]], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM or STOP; the store is written out and synced on the way out."""
    if options.protect and not options.admin:
        raise ZdbError("--protect needs an --admin password")
    if options.mode is not None and options.mode not in MODES:
        raise ZdbError(f"--mode must be user or seq, got {options.mode!r}")
    limits = _limits(options)
    tcp = listen(options)  # a port in use fails here, before the data is loaded
    try:
        hooks = Hooks(options.hook, instance_id(options))
        store = Store(
            data_root=options.data,
            index_root=options.index,
            mode=None if options.mode is None else MODES[options.mode],
            datasize=options.datasize,
            sync=options.sync,
            synctime=options.synctime,
            hooks=hooks,
        )
        store.open()
        # Like 0-db: in memory only (NSSET on default would write them to its descriptor).
        default = store.default
        if options.protect and options.admin:
            default.descriptor = dataclasses.replace(default.descriptor, password=options.admin)
        if options.maxsize:
            default.descriptor = dataclasses.replace(default.descriptor, maxsize=options.maxsize)
        context = ServerContext(
            store=store,
            settings=Settings(
                admin_password=options.admin,
                protect=options.protect,
                revision=f"v{__version__}",
                limits=limits,
            ),
        )
    except BaseException:
        if tcp is not None:
            tcp.close()
        raise

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve_forever(
            context, tcp=tcp, socket_path=options.socket, on_ready=on_ready, stop=stop
        )
        hooks.wait_all()

    try:
        uvloop.run(main())
    finally:
        if tcp is not None:
            tcp.close()
        with contextlib.suppress(ZdbError):
            store.close()  # also after a failed start; closing twice is harmless


_RESERVED_DESCRIPTORS = 256  # data and index files, hooks, the listening sockets


def _limits(options: ServerOptions) -> Limits:
    """The connection and reply limits, with room for every client's descriptor."""
    if options.max_clients < 1:
        raise ZdbError(f"--max-clients must be at least 1, got {options.max_clients}")
    if not math.isfinite(options.idle_timeout) or options.idle_timeout < 0:
        raise ZdbError(
            f"--idle-timeout must be 0 (never) or more seconds, got {options.idle_timeout}"
        )
    if options.max_reply < MAX_ARGUMENT_SIZE + 64:
        raise ZdbError(f"--max-reply must hold one value of {MAX_ARGUMENT_SIZE} bytes")
    if options.max_pending < options.max_reply:
        raise ZdbError("--max-pending must be at least --max-reply")
    wanted = options.max_clients + _RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    max_clients = options.max_clients
    if soft != resource.RLIM_INFINITY and soft < wanted:
        max_clients = max(1, soft - _RESERVED_DESCRIPTORS)
        log.warning("at most %d clients: the descriptor limit (ulimit -n) is %d", max_clients, soft)
    return Limits(
        max_clients=max_clients,
        idle_timeout=options.idle_timeout,
        max_reply=options.max_reply,
        max_pending=options.max_pending,
    )


def listen(options: ServerOptions) -> socket.socket | None:
    """The TCP socket to serve on, bound before anything else starts: '::' is both families."""
    if options.socket is not None and not options.dualnet:
        return None
    try:
        return bind_socket(options.listen, options.port)
    except ServeError as exc:
        raise ZdbError(str(exc)) from exc
