"""The log channel: a zmachine's output reaches its deployer live, and nobody else.

The node opens no port for it: each zmachine gets a seq-mode namespace
``logs-<workload id>`` on the node's own Zero-DB server, private, with a random password
that travels to the deployer only inside the workload's result (sealed to them). A task
in the daemon's loop tails the file the runtime appends the output to (following it by
inode across a rename to ``<file>.1``) and appends what is new as entries of at most
64 KiB, a tick every 0.25 s.

Entry format: a 23-byte header, then the payload. Header (big-endian): ``b"ZL"``, kind
(u8: 0 output, 1 notice from the node), generation (u32, +1 at every flush), the source
file's inode (u64) and the offset in it the payload ends at (u64). The last entry is
where a restarted channel resumes, so a crash between a write and the saved position
neither repeats nor loses output.

Bound: the namespace holds at most ``max_bytes`` (16 MiB). When a write does not fit,
the channel FLUSHes the namespace and writes a notice entry saying how much earlier
output was dropped, then goes on: the newest output is what a deployer needs, and disk
use stays bounded (Zero-DB never reclaims deleted entries' space, a flush does).
Readers notice a flush (fewer entries than they read, or a new generation) and start
again from the notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.node.errors import ProvisionError
from zgrid.node.primitives.zdb import namespace_info
from zgrid.node.zdbserver import ZdbServer
from zgrid.zdb import ClientError, ConnectionLost, ZdbClient

__all__ = [
    "ENTRY_MAX",
    "LOG_BOUND",
    "LogAccess",
    "LogChannel",
    "follow_logs",
    "namespace_for",
    "read_tail",
]

log = logging.getLogger(__name__)

ENTRY_MAX = 64 << 10  # payload bytes per entry
LOG_BOUND = 16 << 20  # bytes a log namespace holds before it is flushed
TICK = 0.25  # seconds between reads of the source: at most 4 batches a second
ENTRIES_PER_TICK = 4  # so a flood is written at 1 MiB/s at most; the file keeps the rest
PREFIX = "logs-"

_HEADER = struct.Struct(">2sBIQQ")
_MAGIC = b"ZL"
_OUTPUT, _NOTICE = 0, 1
_SEQ_KEY = struct.Struct("<Q")
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def namespace_for(workload_id: str) -> str:
    return PREFIX + workload_id


@dataclass(frozen=True, slots=True)
class LogAccess:
    """What a deployer needs to read the log (with the node's addresses added)."""

    namespace: str
    password: str
    port: int

    def as_dict(self) -> dict[str, object]:
        return {"namespace": self.namespace, "password": self.password, "port": self.port}


@dataclass(frozen=True, slots=True)
class _Position:
    generation: int
    inode: int
    offset: int


def _entry(kind: int, position: _Position, payload: bytes) -> bytes:
    header = _HEADER.pack(_MAGIC, kind, position.generation, position.inode, position.offset)
    return header + payload


def _parse(value: bytes) -> tuple[int, _Position | None, bytes]:
    if len(value) < _HEADER.size or value[:2] != _MAGIC:
        return _OUTPUT, None, value  # not the node's (the password holder wrote it): as it is
    _, kind, generation, inode, offset = _HEADER.unpack_from(value)
    return kind, _Position(generation, inode, offset), value[_HEADER.size :]


def read_tail(source: Path, size: int = 2048) -> bytes:
    """The last ``size`` bytes of output, across a rotation (for a failed workload's result)."""
    parts: list[bytes] = []
    wanted = size
    for path in (source, source.with_name(source.name + ".1")):
        try:
            with path.open("rb") as file:
                end = file.seek(0, os.SEEK_END)
                file.seek(max(0, end - wanted))
                chunk = file.read(wanted)
        except OSError:
            continue
        parts.insert(0, chunk)
        wanted -= len(chunk)
        if wanted <= 0:
            break
    return b"".join(parts)[-size:] if parts else b""


class _Tail:
    """Copies one source file into one namespace until cancelled."""

    def __init__(self, channel: LogChannel, workload_id: str, source: Path, password: str):
        self.channel = channel
        self.workload_id = workload_id
        self.source = source
        self.rotated = source.with_name(source.name + ".1")
        self.namespace = namespace_for(workload_id)
        self.password = password
        self.client: ZdbClient | None = None
        self.fd: int | None = None
        self.position = _Position(0, 0, 0)

    # -- the saved position ---------------------------------------------------------------

    async def _resume(self, client: ZdbClient) -> None:
        count = await client.execute("DBSIZE")
        saved = self.channel._load_state(self.workload_id)
        last = None
        if count:
            _, last, _ = _parse(await client.get(_SEQ_KEY.pack(count - 1)) or b"")
        if last is not None:
            self.position = last
        elif saved is not None:
            self.position = saved
        for path in (self.rotated, self.source):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            if os.fstat(fd).st_ino == self.position.inode:
                self._switch(fd, self.position.offset)
                return
            os.close(fd)
        self._open_source()  # the file it was at is gone: the current one from its start

    def _switch(self, fd: int, offset: int) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = fd
        inode = os.fstat(fd).st_ino
        self.position = _Position(self.position.generation, inode, offset)

    def _open_source(self) -> bool:
        try:
            fd = os.open(self.source, os.O_RDONLY)
        except OSError:
            return False
        self._switch(fd, 0)
        return True

    # -- reading the source ---------------------------------------------------------------

    def _pending(self) -> list[tuple[_Position, bytes]]:
        """The next entries to write, with the position each one ends at."""
        if self.fd is None and not self._open_source():
            return []
        assert self.fd is not None
        if os.fstat(self.fd).st_size < self.position.offset:  # truncated in place
            self.position = _Position(self.position.generation, self.position.inode, 0)
        entries: list[tuple[_Position, bytes]] = []
        offset = self.position.offset
        while len(entries) < ENTRIES_PER_TICK:
            chunk = os.pread(self.fd, ENTRY_MAX, offset)
            if not chunk:
                if not entries and self._rotated():
                    return self._pending()
                break
            if len(chunk) == ENTRY_MAX and b"\n" in chunk:
                chunk = chunk[: chunk.rindex(b"\n") + 1]  # whole lines when it can
            offset += len(chunk)
            end = _Position(self.position.generation, self.position.inode, offset)
            entries.append((end, chunk))
        return entries

    def _rotated(self) -> bool:
        """At the end of the current file: move on if the source path is another file now."""
        try:
            inode = os.stat(self.source).st_ino
        except FileNotFoundError:
            return False
        if inode == self.position.inode:
            return False
        return self._open_source()

    # -- writing --------------------------------------------------------------------------

    async def _connect(self) -> ZdbClient:
        try:
            return await self.channel.server.connect(self.namespace, self.password)
        except (ClientError, ConnectionLost):
            await self.channel.server.ensure_running()
            return await self.channel.server.connect(self.namespace, self.password)

    async def _write(self, client: ZdbClient, kind: int, end: _Position, payload: bytes) -> None:
        try:
            await client.set(b"", _entry(kind, self._with_generation(end), payload))
        except ClientError as exc:
            if "No space left" not in str(exc):
                raise
            await self._flush(client)
            await client.set(b"", _entry(kind, self._with_generation(end), payload))

    def _with_generation(self, position: _Position) -> _Position:
        return _Position(self.position.generation, position.inode, position.offset)

    async def _flush(self, client: ZdbClient) -> None:
        info = namespace_info(await client.execute("NSINFO", self.namespace))
        dropped = info.get("data_size_bytes", "?")
        generation = (self.position.generation + 1) & 0xFFFFFFFF
        self.position = _Position(generation, self.position.inode, self.position.offset)
        self.channel._save_state(self.workload_id, self.position)  # before the flush
        await client.execute("FLUSH")
        notice = (
            f"\n[zgrid: the log holds at most {self.channel.max_bytes} bytes;"
            f" {dropped} bytes of earlier output were dropped]\n"
        ).encode()
        await client.set(b"", _entry(_NOTICE, self.position, notice))

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                client = await self._connect()
                self.client = client
                try:
                    await self._resume(client)
                    backoff = 0.5
                    while True:
                        for end, chunk in self._pending():
                            await self._write(client, _OUTPUT, end, chunk)
                            self.position = self._with_generation(end)
                            self.channel._save_state(self.workload_id, self.position)
                        await asyncio.sleep(TICK)
                finally:
                    self.client = None
                    await client.close()
            except asyncio.CancelledError:
                raise
            except (ClientError, ConnectionLost, OSError) as exc:
                log.warning("log of %s: %s; retrying in %g s", self.workload_id, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LogChannel:
    """Log namespaces of the zmachines on the node's Zero-DB; secrets and positions under root."""

    def __init__(self, server: ZdbServer, root: Path, *, max_bytes: int = LOG_BOUND) -> None:
        if max_bytes < 4 * ENTRY_MAX:
            raise ValueError(f"a log needs room for a few entries: max_bytes >= {4 * ENTRY_MAX}")
        self.server = server
        self.root = root
        self.max_bytes = max_bytes
        self._tasks: dict[str, tuple[asyncio.Task[None], _Tail]] = {}

    # -- files ----------------------------------------------------------------------------

    def _check(self, workload_id: str) -> None:
        if not _ID.match(workload_id):
            raise ProvisionError(f"invalid workload id for a log: {workload_id!r}")

    def _secret_path(self, workload_id: str) -> Path:
        return self.root / f"{workload_id}.password"

    def _state_path(self, workload_id: str) -> Path:
        return self.root / f"{workload_id}.position"

    def _password(self, workload_id: str) -> str:
        path = self._secret_path(workload_id)
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text().strip()
            if text:
                return text
        self.root.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(24)
        write_atomic(path, text.encode() + b"\n", mode=0o600)
        return text

    def _load_state(self, workload_id: str) -> _Position | None:
        try:
            data = json.loads(self._state_path(workload_id).read_text())
            return _Position(int(data["generation"]), int(data["inode"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_state(self, workload_id: str, position: _Position) -> None:
        data = {"generation": position.generation, "inode": position.inode}
        data["offset"] = position.offset
        # The namespace's last entry is the truth; this only covers an empty namespace.
        write_atomic(self._state_path(workload_id), json.dumps(data).encode(), sync=False)

    # -- the channel ----------------------------------------------------------------------

    async def open(self, workload_id: str, source: Path) -> LogAccess:
        """Make (or find) the workload's log namespace and follow ``source`` into it."""
        self._check(workload_id)
        name = namespace_for(workload_id)
        password = self._password(workload_id)
        try:
            async with await self.server.admin() as admin:
                try:
                    info = namespace_info(await admin.execute("NSINFO", name))
                except ClientError:
                    await admin.nsnew(name)
                    info = namespace_info(await admin.execute("NSINFO", name))
                await admin.nsset(name, "password", password)
                await admin.nsset(name, "public", "0")
                if info.get("mode") != "sequential":
                    await admin.nsset(name, "mode", "seq")
                await admin.nsset(name, "maxsize", str(self.max_bytes))
        except (ClientError, ConnectionLost) as exc:
            raise ProvisionError(f"cannot open the log of {workload_id}: {exc}") from exc
        running = self._tasks.get(workload_id)
        if running is None or running[0].done() or running[1].source != source:
            await self._stop(workload_id)
            tail = _Tail(self, workload_id, source, password)
            task = asyncio.create_task(tail.run(), name=f"log {workload_id}")
            self._tasks[workload_id] = (task, tail)
        return LogAccess(namespace=name, password=password, port=self.server.port)

    async def _stop(self, workload_id: str) -> None:
        running = self._tasks.pop(workload_id, None)
        if running is None:
            return
        task, tail = running
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        tail.close()

    async def close(self, workload_id: str) -> None:
        """Stop following, delete the namespace and forget its password."""
        self._check(workload_id)
        await self._stop(workload_id)
        try:
            async with await self.server.admin() as admin:
                await admin.execute("NSDEL", namespace_for(workload_id))
        except ClientError as exc:
            if "doesn't exists" not in str(exc) and "not found" not in str(exc).lower():
                raise ProvisionError(f"cannot remove the log of {workload_id}: {exc}") from exc
        for path in (self._secret_path(workload_id), self._state_path(workload_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def present(self) -> set[str]:
        """The workload ids that have a log namespace on the server."""
        async with await self.server.admin() as admin:
            names = await admin.execute("NSLIST")
        decoded = (name.decode(errors="replace") for name in names)
        return {name[len(PREFIX) :] for name in decoded if name.startswith(PREFIX)}

    def following(self) -> set[str]:
        """The workload ids whose output is being copied right now."""
        return {wid for wid, (task, _) in self._tasks.items() if not task.done()}

    async def aclose(self) -> None:
        """Stop every task (the namespaces stay; ``open`` again resumes)."""
        for workload_id in list(self._tasks):
            await self._stop(workload_id)


async def follow_logs(
    host: str,
    port: int,
    namespace: str,
    password: str,
    *,
    follow: bool = True,
    from_start: bool = True,
    poll: float = TICK,
) -> AsyncIterator[bytes]:
    """The log's output in order: what is there (or only what comes, without ``from_start``),
    then, with ``follow``, new output as it arrives. A wrong password raises ClientError.
    """
    client = await ZdbClient.connect(host, port, namespace=namespace, password=password)
    try:
        next_id = 0
        generation: int | None = None
        if not from_start:
            next_id = await client.execute("DBSIZE")
            if next_id:
                _, last, _ = _parse(await client.get(_SEQ_KEY.pack(next_id - 1)) or b"")
                generation = None if last is None else last.generation
        while True:
            try:
                count = await client.execute("DBSIZE")
            except ConnectionLost:
                if not follow:
                    raise
                client = await _reconnect(client, host, port, namespace, password)
                continue
            if count < next_id:  # flushed: start again with its notice
                next_id, generation = 0, None
            if next_id >= count:
                if not follow:
                    return
                await asyncio.sleep(poll)
                continue
            keys = [_SEQ_KEY.pack(n) for n in range(next_id, min(count, next_id + 16))]
            values = await asyncio.gather(*(client.get(key) for key in keys))
            for value in values:
                _, position, payload = _parse(value or b"")
                if position is not None:
                    if generation is not None and position.generation != generation:
                        next_id, generation = 0, None  # flushed and refilled past us
                        break
                    generation = position.generation
                next_id += 1
                if payload:
                    yield payload
    finally:
        await client.close()


async def _reconnect(
    old: ZdbClient, host: str, port: int, namespace: str, password: str
) -> ZdbClient:
    await old.close()
    delay = 0.25
    while True:
        try:
            return await ZdbClient.connect(host, port, namespace=namespace, password=password)
        except ClientError as exc:
            if "denied" in str(exc) or "not found" in str(exc).lower():
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5)
