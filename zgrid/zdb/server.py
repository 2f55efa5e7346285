"""The Zero-DB server: one asyncio protocol per client, commands run in arrival order.

Each read is parsed into every complete request it holds; the requests run one
after the other; the writes of all clients served in one event-loop pass are
written out to the files once (data first, then the index, fsync with --sync), and
only then are their replies sent, one write per client. A client that does not read its replies stops being read from, and its
requests already read wait until its replies drain: it cannot make the server
buffer without bound, and other clients go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import cast

from zgrid.web import listen_address
from zgrid.zdb.commands import NO_REPLY, build_handlers, match
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError, StorageError
from zgrid.zdb.resp import RequestFault, RequestParser, c_atoll, error

__all__ = ["GroupCommit", "ZdbProtocol", "serve_forever"]

log = logging.getLogger(__name__)

_DETACHED = b"-Your active namespace is not available anymore (probably removed).\r\n"
_UNSUPPORTED = b"-Command not supported\r\n"
_HIGH_WATER = 4 * 1024 * 1024
_OWNER_MAX = 32


class GroupCommit:
    """Replies wait here until the writes of every client served in this loop pass are written out.

    One write-out (one write per file, one fsync with --sync) then covers all of
    them, instead of one per client; only after it are the replies sent. If the
    write-out fails, none of them is acknowledged: those connections are dropped.
    """

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.waiting: list[tuple[ZdbProtocol, bytes, bool]] = []
        self.scheduled = False

    def add(self, protocol: ZdbProtocol, payload: bytes, close: bool) -> None:
        self.waiting.append((protocol, payload, close))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        waiting, self.waiting = self.waiting, []
        try:
            self.context.store.write_out()
        except StorageError:
            log.exception("cannot write to disk; dropping connections without replies")
            for protocol, _, _ in waiting:
                protocol.queue.clear()
                if protocol.transport is not None:
                    protocol.transport.abort()
            return
        stats = self.context.stats
        for protocol, payload, close in waiting:
            transport = protocol.transport
            if transport is None or transport.is_closing():
                continue
            if payload:
                stats.network_tx_bytes += len(payload)
                transport.write(payload)
            if close:
                transport.close()


class ZdbProtocol(asyncio.Protocol):
    def __init__(
        self, context: ServerContext, handlers: dict[str, Callable[..., bytes]], commit: GroupCommit
    ) -> None:
        self.context = context
        self.handlers = handlers
        self.commit = commit
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.queue: deque[list[bytes]] = deque()  # requests read, not yet run
        self.fault: RequestFault | None = None  # answered once the queue is done
        self.writing_paused = False
        self.reading_paused = False
        self.scheduled = False

    # -- connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have its methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Replies are small and written once per batch: do not let Nagle hold them.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        self.session = self.context.new_session(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.context.sessions.discard(self.session)
        self.transport = None

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.queue:
            self._schedule()
        self._update_reading()

    def _update_reading(self) -> None:
        """Read while the replies flow and nothing read is waiting; else let TCP push back."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self.writing_paused or bool(self.queue) or self.fault is not None
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._process)

    def push(self, reply: bytes) -> None:
        """Send a reply that is not an answer to this client's own request (WAIT, MIRROR).

        Through the group commit like every reply: a mirror or a waiter never hears
        of a write before it is on disk, nor before replies queued ahead of it.
        """
        self.commit.add(self, reply, False)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- requests -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.fault is not None:
            return  # the connection ends after the requests before the fault
        self.context.stats.network_rx_bytes += len(data)
        try:
            self.queue.extend(self.parser.feed(data))
        except RequestFault as fault:
            self.queue.extend(fault.before)
            self.fault = fault
        if not self.writing_paused:
            self._process()
        self._update_reading()

    def _process(self) -> None:
        """Run the queued requests, until their replies would fill the write buffer."""
        self.scheduled = False
        session = self.session
        transport = self.transport
        if session is None or transport is None or transport.is_closing():
            return
        queue = self.queue
        if session.detached:
            # Its namespace was deleted: every request read gets 0-db's answer, then it ends.
            self.commit.add(self, _DETACHED * len(queue), True)
            queue.clear()
            return
        replies: list[bytes] = []
        size = transport.get_write_buffer_size()
        while queue:
            reply = self._run(session, queue.popleft())
            replies.append(reply)
            size += len(reply)
            if size > _HIGH_WATER:
                break  # the rest once the client has read these
        close = not queue and self.fault is not None
        if close:
            message = str(self.fault)
            if message:  # an empty message: 0-db closes without a word
                replies.append(error(message))
        self.commit.add(self, b"".join(replies), close)
        if close:
            return
        if queue and not self.writing_paused:
            self._schedule()  # the others get their turn first
        self._update_reading()

    def _run(self, session: Session, args: list[bytes]) -> bytes:
        context = self.context
        owner = session.ident
        if session.master:
            if len(args) < 2:
                return b"-Missing arguments\r\n"
            if len(args[-1]) > _OWNER_MAX:
                return NO_REPLY
            owner = c_atoll(args.pop()) % (1 << 64)  # strtoul: the leading number, wrapped
        name = match(args[0])
        if name is None:
            context.stats.commands_failed += 1
            return _UNSUPPORTED
        context.stats.commands_executed += 1
        try:
            reply = self.handlers[name](context, session, args)
        except CommandError as exc:
            reply = error(str(exc))
        except StorageError:
            log.exception("storage failure in %s", name)
            reply = b"-Internal Error\r\n"
        except Exception:
            # A bug, not the client's fault: answered, logged, and the connection goes on.
            log.exception("%s failed", name)
            reply = b"-Internal Error\r\n"
        if context.listening:  # someone WAITs or mirrors: tell them (rare, so tested first)
            self._after(session, name, args, owner)
        return reply

    def _after(self, session: Session, name: str, args: list[bytes], owner: int) -> None:
        """Notify waiters of this command, and forward it to mirrors."""
        listeners = self.context.listeners()
        if not listeners:
            return
        forwarded: bytes | None = None
        for other in listeners:
            if other is session or other.connection is None:
                continue
            if other.mirror:
                if owner:
                    if forwarded is None:
                        forwarded = _mirror_message(session, args, owner)
                    other.connection.push(forwarded)
                continue
            waiting = other.waiting
            if (
                waiting is not None
                and other.namespace is session.namespace
                and waiting[0] in (name, "*")
            ):
                other.waiting = None
                other.connection.push(b"+%b\r\n" % name.encode())


def _mirror_message(session: Session, args: list[bytes], owner: int) -> bytes:
    namespace = session.namespace.name.encode("utf-8", "surrogateescape")
    parts = [
        b"*%d\r\n:%d\r\n$%d\r\n%b\r\n:%d\r\n"
        % (len(args) + 3, int(time.time()), len(namespace), namespace, owner)
    ]
    parts.extend(b"$%d\r\n%b\r\n" % (len(argument), argument) for argument in args)
    return b"".join(parts)


async def _expire_waits(context: ServerContext) -> None:
    while True:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        for session in list(context.sessions):
            if (
                session.waiting is not None
                and session.waiting[1] <= now
                and session.connection is not None
            ):
                session.waiting = None
                session.connection.push(b"-Timeout\r\n")
        context.store.hooks.reap()


async def serve_forever(
    context: ServerContext,
    *,
    tcp: socket.socket | None = None,
    socket_path: Path | None = None,
    on_ready: Callable[[list[str]], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on a bound TCP socket and/or a unix socket until ``stop`` is set; then write out and close the store."""
    loop = asyncio.get_running_loop()
    handlers = build_handlers()
    commit = GroupCommit(context)
    stop = stop or asyncio.Event()
    stopped_by_command = False

    def stop_command() -> None:
        nonlocal stopped_by_command
        stopped_by_command = True
        stop.set()

    context.stop = stop_command
    servers: list[asyncio.AbstractServer] = []
    addresses: list[str] = []
    try:
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            servers.append(
                await loop.create_unix_server(
                    lambda: ZdbProtocol(context, handlers, commit), str(socket_path)
                )
            )
            addresses.append(f"unix://{socket_path}")
        if tcp is not None:
            server = await loop.create_server(
                lambda: ZdbProtocol(context, handlers, commit), sock=tcp
            )
            servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                addresses.append(f"tcp://{listen_address(host, port)}")
        if context.store.hooks.fire("ready", wait=True) != 0:
            return
        if on_ready is not None:
            on_ready(addresses)
        expirer = asyncio.create_task(_expire_waits(context))
        await stop.wait()
        expirer.cancel()
        if not stopped_by_command:
            # A signal (SIGINT/SIGTERM): 0-db runs the blocking "close" hook before closing.
            context.store.hooks.fire("close", wait=True)
    finally:
        for listener in servers:
            listener.close()
        commit.run()  # replies still waiting (STOP's own among them) go out before closing
        for session in list(context.sessions):
            if session.connection is not None:
                session.connection.close()
        for listener in servers:
            with contextlib.suppress(Exception):
                await listener.wait_closed()
        context.store.close()
