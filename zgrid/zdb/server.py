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
from zgrid.zdb.budget import LARGE_REPLY, ReplyBudget
from zgrid.zdb.commands import NO_REPLY, build_handlers, match
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError, ReplyHeld, StorageError
from zgrid.zdb.resp import RequestFault, RequestParser, c_atoll, error

__all__ = ["GroupCommit", "ZdbProtocol", "serve_forever"]

log = logging.getLogger(__name__)

_DETACHED = b"-Your active namespace is not available anymore (probably removed).\r\n"
_UNSUPPORTED = b"-Command not supported\r\n"
_TOO_MANY = b"-Too many clients connected, try again later\r\n"
_TOO_LARGE = b"-Reply too large\r\n"
# Compared by identity (a fresh object, never a handler's reply): "wait for room in the budget".
_HELD = bytes(bytearray(b"held"))
_HIGH_WATER = 4 * 1024 * 1024
_OWNER_MAX = 32


class GroupCommit:
    """Replies wait here until the writes of every client served in this loop pass are written out.

    One write-out (one write per file, one fsync with --sync) then covers all of
    them, instead of one per client; only after it are the replies sent. If the
    write-out fails, none of them is acknowledged: those connections are dropped.
    """

    def __init__(self, context: ServerContext, budget: ReplyBudget) -> None:
        self.context = context
        self.budget = budget
        self.waiting: list[tuple[ZdbProtocol, bytes, bool]] = []
        self.waiting_bytes = 0
        self.scheduled = False

    def add(self, protocol: ZdbProtocol, payload: bytes, close: bool) -> None:
        self.waiting.append((protocol, payload, close))
        self.waiting_bytes += len(payload)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        waiting, self.waiting = self.waiting, []
        self.waiting_bytes = 0
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
                self.budget.hold(protocol, transport.get_write_buffer_size())
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
        self.held = False  # a large reply waits for room in the server's reply budget
        self.held_size = 0
        self.unread = 0  # reply bytes ahead of the request running: buffered, or built

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
        if len(self.context.sessions) >= self.context.settings.limits.max_clients:
            # Refused before it costs anything more than this socket, and told why.
            log.warning("refusing a client: %d connected", len(self.context.sessions))
            transport.write(_TOO_MANY)
            transport.close()
            return
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        self.session = self.context.new_session(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.context.sessions.discard(self.session)
        self.commit.budget.forget(self)
        self.transport = None

    def buffered(self) -> int:
        """Reply bytes written but not yet taken by the client's socket."""
        transport = self.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def wake(self) -> None:
        """The reply budget has room again: go on with the requests read."""
        self.held = False
        if self.queue and not self.writing_paused:
            self._schedule()
        self._update_reading()

    @property
    def idle(self) -> bool:
        """Nothing read waits to run, nothing is being waited for (WAIT, MIRROR)."""
        session = self.session
        return (
            session is not None
            and not self.queue
            and not self.held
            and not session.mirror
            and session.waiting is None
        )

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
        pause = self.writing_paused or bool(self.queue) or self.fault is not None or self.held
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

    def room_for(self, size: int) -> bool:
        return self.commit.budget.room(size, self.unread)

    # -- requests -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        session = self.session
        if self.fault is not None or session is None:
            return  # the connection ends after the requests before the fault, or was refused
        session.last_request = time.monotonic()
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
            reply = self._run(session, queue[0], size + self.commit.waiting_bytes)
            if reply is _HELD:
                self.held = True
                self.commit.budget.wait(self, self.held_size)
                break
            queue.popleft()
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
        if queue and not self.writing_paused and not self.held:
            self._schedule()  # the others get their turn first
        self._update_reading()

    def _run(self, session: Session, args: list[bytes], unread: int) -> bytes:
        """The reply to ``args``, or _HELD: a large reply with no room (``unread``: bytes ahead)."""
        context = self.context
        owner = session.ident
        if session.master:
            if len(args) < 2:
                return b"-Missing arguments\r\n"
            if len(args[-1]) > _OWNER_MAX:
                return NO_REPLY
            owner = c_atoll(args[-1]) % (1 << 64)  # strtoul: the leading number, wrapped
            args = args[:-1]
        name = match(args[0])
        if name is None:
            context.stats.commands_failed += 1
            return _UNSUPPORTED
        context.stats.commands_executed += 1
        self.unread = unread
        try:
            reply = self.handlers[name](context, session, args)
        except ReplyHeld as held:
            context.stats.commands_executed -= 1
            self.held_size = held.size
            return _HELD
        except CommandError as exc:
            reply = error(str(exc))
        except StorageError:
            log.exception("storage failure in %s", name)
            reply = b"-Internal Error\r\n"
        except Exception:
            # A bug, not the client's fault: answered, logged, and the connection goes on.
            log.exception("%s failed", name)
            reply = b"-Internal Error\r\n"
        if len(reply) > LARGE_REPLY:
            if len(reply) > context.settings.limits.max_reply:
                reply = _TOO_LARGE
            elif not self.commit.budget.room(len(reply), unread):
                # Only reads make large replies: running it again once there is room is safe.
                context.stats.commands_executed -= 1
                self.held_size = len(reply)
                return _HELD
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
    idle_timeout = context.settings.limits.idle_timeout
    next_idle_sweep = time.monotonic()
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
        if idle_timeout and now >= next_idle_sweep:
            next_idle_sweep = now + min(1.0, idle_timeout / 4)
            _close_idle(context, now - idle_timeout)
        context.store.hooks.reap()


def _close_idle(context: ServerContext, quiet_since: float) -> None:
    for session in list(context.sessions):
        connection = session.connection
        if (
            session.last_request < quiet_since
            and isinstance(connection, ZdbProtocol)
            and connection.idle
        ):
            connection.close()


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
    commit = GroupCommit(context, ReplyBudget(context.settings.limits.max_pending))
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
