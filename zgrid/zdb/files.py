"""One namespace's data and index files: buffered appends, in-place index patches, reads, rotation.

Appends collect in memory and reach the files at :meth:`NamespaceFiles.write_out`,
which the server calls once per batch of pipelined requests, before it
replies: one ``write`` per file per batch, and with ``sync`` one ``fsync``.
Data always reaches disk before the index that points at it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path

from zgrid.atomic import fsync_directory
from zgrid.zdb.errors import StorageError
from zgrid.zdb.formats import (
    DATA_ENTRY,
    DATA_HEADER,
    DATA_MAGIC,
    DATA_VERSION,
    INDEX_HEADER,
    INDEX_MAGIC,
    INDEX_VERSION,
    data_file_name,
    index_file_name,
)

__all__ = ["DiskStats", "NamespaceFiles", "PayloadCache", "SyncPolicy"]


class PayloadCache:
    """Recently written or read payloads by (data file id, offset), up to a byte budget.

    GET and SET's unchanged-value check are then answered from memory for the
    working set instead of a pread each. Eviction is oldest-inserted first, which
    costs nothing on a hit (an OrderedDict pops its oldest item in constant time).
    """

    __slots__ = ("_items", "budget", "size")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._items: OrderedDict[int, bytes] = OrderedDict()

    # Keyed by one int (file id and offset packed) rather than a tuple: cheaper per lookup.
    def get(self, fileid: int, offset: int) -> bytes | None:
        return self._items.get(fileid << 32 | offset)

    def put(self, fileid: int, offset: int, payload: bytes) -> None:
        if len(payload) > self.budget // 8:
            return  # huge values would push out the whole working set
        key = fileid << 32 | offset
        if key in self._items:
            return
        self._items[key] = payload
        self.size += len(payload)
        while self.size > self.budget:
            self.size -= len(self._items.popitem(last=False)[1])

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


@dataclass
class DiskStats:
    """What one namespace read from and wrote to its files while serving, and what failed."""

    data_read_bytes: int = 0
    data_write_bytes: int = 0
    index_read_bytes: int = 0
    index_write_bytes: int = 0
    data_read_failed: int = 0
    data_write_failed: int = 0
    index_read_failed: int = 0
    index_write_failed: int = 0
    data_error_last: int = 0
    index_error_last: int = 0

    def data_failed(self, *, write: bool) -> None:
        if write:
            self.data_write_failed += 1
        else:
            self.data_read_failed += 1
        self.data_error_last = int(time.time())

    def index_failed(self, *, write: bool) -> None:
        if write:
            self.index_write_failed += 1
        else:
            self.index_read_failed += 1
        self.index_error_last = int(time.time())

    def __add__(self, other: DiskStats) -> DiskStats:
        return DiskStats(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


class SyncPolicy:
    """``sync``: fsync at every write-out; ``synctime``: fsync when that many seconds have passed.

    One per namespace: its clock is that namespace's last fsync.
    """

    __slots__ = ("_last", "sync", "synctime")

    def __init__(self, *, sync: bool = False, synctime: int = 0) -> None:
        self.sync = sync
        self.synctime = synctime
        self._last = time.monotonic()

    @property
    def durable(self) -> bool:
        """Whether writes are meant to survive a power loss (then new directory entries too)."""
        return self.sync or bool(self.synctime)

    def due(self) -> bool:
        if self.sync:
            return True
        return bool(self.synctime and time.monotonic() - self._last > self.synctime)

    def done(self) -> None:
        self._last = time.monotonic()


class NamespaceFiles:
    """The active data and index file of a namespace (same id), and reads of older ones."""

    def __init__(
        self,
        data_dir: Path,
        index_dir: Path,
        *,
        policy: SyncPolicy,
        cache: PayloadCache | None = None,
        on_missing: Callable[[Path], bool] | None = None,
    ) -> None:
        self.cache = cache or PayloadCache(0)
        # Asked when an older data file is not there (offloaded); True means "try again".
        self.on_missing = on_missing
        self.data_dir = data_dir
        self.index_dir = index_dir
        self.policy = policy
        self.stats = DiskStats()
        self.fileid = 0
        self._data_fd = -1
        self._index_fd = -1
        self.data_size = 0  # bytes of the active data file, buffered ones included
        self.index_size = 0
        self._data_written = 0
        self._index_written = 0
        self._data_pending = bytearray()
        self._index_pending = bytearray()
        # In-place changes to index bytes already on disk (file id, offset, bytes), applied
        # at write-out after the records they belong with: flagging an old version deleted
        # before its replacement is on disk would lose the key in a crash.
        self._patches: list[tuple[int, int, bytes]] = []
        self._readers: dict[int, int] = {}  # data file id -> read-only fd of older files

    # -- opening and rotating -------------------------------------------------------------

    def open(self, fileid: int, mode: int) -> None:
        """Make ``fileid`` the active pair, creating files (with ``mode`` in the index header)."""
        self.close()
        self.fileid = fileid
        try:
            self._index_fd, index_created = _open_with_header(
                self.index_path(fileid),
                INDEX_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, 0, 0, fileid, mode),
            )
            self._data_fd, data_created = _open_with_header(
                self.data_path(fileid), DATA_HEADER.pack(DATA_MAGIC, DATA_VERSION, 0, 0, fileid)
            )
            self.index_size = self._index_written = os.fstat(self._index_fd).st_size
            self.data_size = self._data_written = os.fstat(self._data_fd).st_size
            if self.policy.durable and (index_created or data_created):
                # A new (rotated) file is only reachable after a power loss if the
                # directory entry naming it is on disk too (its bytes: at write-out).
                fsync_directory(self.data_dir)
                fsync_directory(self.index_dir)
        except OSError as exc:
            raise StorageError(
                f"cannot open files {fileid} of {self.index_dir.name}: {exc.strerror or exc}"
            ) from exc

    def rotate(self, mode: int) -> int:
        """Move to the next file id, after writing out the current pair."""
        self.write_out()
        self.open(self.fileid + 1, mode)
        return self.fileid

    def close(self) -> None:
        with contextlib.suppress(StorageError):
            self.write_out()
        # After a failed write-out these bytes must not land ahead of the next file's records.
        self._data_pending.clear()
        self._index_pending.clear()
        self._patches.clear()
        for fd in (self._data_fd, self._index_fd, *self._readers.values()):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._data_fd = self._index_fd = -1
        self._readers.clear()

    def rewrite_mode(self, mode: int) -> None:
        """Record a new namespace mode in the header of index file 0 (fresh namespaces only)."""
        self.write_out()
        self.patch_index(0, INDEX_HEADER.size - 1, bytes([mode]))
        self.write_out()

    def data_path(self, fileid: int) -> Path:
        return self.data_dir / data_file_name(fileid)

    def index_path(self, fileid: int) -> Path:
        return self.index_dir / index_file_name(fileid)

    # -- writing --------------------------------------------------------------------------

    def append_data(self, record: bytes) -> int:
        """Queue a data record; return its offset in the active data file."""
        offset = self.data_size
        self._data_pending += record
        self.data_size += len(record)
        return offset

    def append_index(self, record: bytes) -> int:
        offset = self.index_size
        self._index_pending += record
        self.index_size += len(record)
        return offset

    def patch_index(self, fileid: int, offset: int, record: bytes) -> None:
        """Overwrite bytes of an index file in place (a deleted flag, a seq slot)."""
        if fileid == self.fileid and offset >= self._index_written:
            start = offset - self._index_written
            self._index_pending[start : start + len(record)] = record
            return
        self._patches.append((fileid, offset, record))

    def _apply_patches(self, sync: bool) -> None:
        patches, self._patches = self._patches, []
        for fileid, offset, record in patches:
            if fileid == self.fileid:
                self._pwrite(self._index_fd, record, offset, fileid)
                continue
            try:
                fd = os.open(self.index_path(fileid), os.O_WRONLY)
            except OSError as exc:
                self.stats.index_failed(write=True)
                raise StorageError(
                    f"cannot open index file {fileid}: {exc.strerror or exc}"
                ) from exc
            try:
                self._pwrite(fd, record, offset, fileid)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def _pwrite(self, fd: int, record: bytes, offset: int, fileid: int) -> None:
        try:
            if os.pwrite(fd, record, offset) != len(record):
                raise OSError("short write")
        except OSError as exc:
            self.stats.index_failed(write=True)
            raise StorageError(f"cannot update index file {fileid}: {exc}") from exc
        self.stats.index_write_bytes += len(record)

    def write_out(self) -> None:
        """Write what is queued: data, then new index entries, then in-place index changes.

        With the policy's fsync, all of it is synced before this returns.
        """
        if not self._data_pending and not self._index_pending and not self._patches:
            return
        sync = self.policy.due()  # asked once: data and index are synced together or not at all
        stats = self.stats
        try:
            if self._data_pending:
                _write_all(self._data_fd, self._data_pending, self._data_written)
                stats.data_write_bytes += len(self._data_pending)
                self._data_written += len(self._data_pending)
                self._data_pending.clear()
            if sync:
                os.fsync(self._data_fd)
        except OSError as exc:
            stats.data_failed(write=True)
            raise StorageError(
                f"cannot write data file {self.fileid} of {self.index_dir.name}: {exc.strerror or exc}"
            ) from exc
        try:
            if self._index_pending:
                _write_all(self._index_fd, self._index_pending, self._index_written)
                stats.index_write_bytes += len(self._index_pending)
                self._index_written += len(self._index_pending)
                self._index_pending.clear()
            if self._patches:
                self._apply_patches(sync)
            if sync:
                os.fsync(self._index_fd)
                self.policy.done()
        except OSError as exc:
            stats.index_failed(write=True)
            raise StorageError(
                f"cannot write index file {self.fileid} of {self.index_dir.name}: {exc.strerror or exc}"
            ) from exc

    def _fsync(self) -> None:
        for fd in (self._data_fd, self._index_fd):
            if fd >= 0:
                os.fsync(fd)

    def sync(self) -> None:
        self.write_out()
        self._fsync()
        self.policy.done()

    # -- reading --------------------------------------------------------------------------

    def read_data(self, fileid: int, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of data file ``fileid`` (pending bytes included)."""
        if fileid == self.fileid and offset + length > self._data_written:
            if offset >= self._data_written:
                start = offset - self._data_written
                return bytes(self._data_pending[start : start + length])
            self.write_out()
        fd = self._data_fd if fileid == self.fileid else self._reader(fileid)
        try:
            chunk = os.pread(fd, length, offset)
        except OSError as exc:
            self.stats.data_failed(write=False)
            raise StorageError(f"cannot read data file {fileid}: {exc.strerror or exc}") from exc
        if len(chunk) != length:
            self.stats.data_failed(write=False)
            raise StorageError(f"data file {fileid} is shorter than expected")
        self.stats.data_read_bytes += length
        return chunk

    def read_payload(self, fileid: int, offset: int, idlength: int, length: int) -> bytes:
        """The payload of the data entry at ``offset`` (from the cache when it is there)."""
        cached = self.cache.get(fileid, offset)
        if cached is not None and len(cached) == length:
            return cached
        payload = self.read_data(fileid, offset + DATA_ENTRY.size + idlength, length)
        self.cache.put(fileid, offset, payload)
        return payload

    def _reader(self, fileid: int) -> int:
        fd = self._readers.get(fileid)
        if fd is None:
            fd = self._open_older(fileid)
            if len(self._readers) >= 16:  # keep a few older files open, not all of them
                os.close(self._readers.pop(next(iter(self._readers))))
            self._readers[fileid] = fd
        return fd

    def _open_older(self, fileid: int) -> int:
        path = self.data_path(fileid)
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            if self.on_missing is None or not self.on_missing(path):
                raise StorageError(f"data file {fileid} is missing") from exc
        except OSError as exc:
            raise StorageError(f"cannot open data file {fileid}: {exc.strerror or exc}") from exc
        try:
            return os.open(path, os.O_RDONLY)  # the missing-data hook brought it back
        except OSError as exc:
            raise StorageError(f"data file {fileid} is missing") from exc

    def index_exists(self, fileid: int) -> bool:
        return self.index_path(fileid).is_file()


def _open_with_header(path: Path, header: bytes) -> tuple[int, bool]:
    """The file's descriptor, and whether it was new (its header just written)."""
    # Not O_APPEND: on Linux pwrite() to an O_APPEND file ignores the offset, and the
    # index needs in-place patches. Appends are written at the tracked end instead.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    size = os.fstat(fd).st_size
    if size == 0:
        _write_all(fd, header, 0)
    elif size < len(header):
        os.close(fd)
        raise OSError(f"{path.name} is shorter than its header ({size} bytes)")
    return fd, size == 0


def _write_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
