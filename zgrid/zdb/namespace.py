"""A namespace: its keys in memory, its files on disk, and the operations of 0-db on them.

Loading replays the index files in order (a torn last entry is cut off), then
replays any data entries the index does not yet cover, which rebuilds a missing
or truncated index from the data files. Writes follow 0-db's order: the data
record first, then the index (flag the old version in place, append the new).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from zgrid.atomic import fsync_directory, write_atomic
from zgrid.zdb.entry import Entry, pack_cursor, unpack_cursor
from zgrid.zdb.errors import CommandError, StorageError
from zgrid.zdb.files import NamespaceFiles, PayloadCache, SyncPolicy
from zgrid.zdb.formats import (
    DATA_ENTRY,
    DATA_FLAG_DELETED,
    DATA_HEADER,
    INDEX_FLAG_DELETED,
    INDEX_HEADER,
    INDEX_ITEM,
    INDEX_MAGIC,
    INDEX_VERSION,
    MODE_SEQ,
    MODE_USER,
    NAMESPACE_FILE,
    DataEntry,
    IndexItem,
    NamespaceDescriptor,
    crc32c,
)

__all__ = ["MAX_KEY_LENGTH", "HistoryStep", "Namespace", "ScanItem"]

MAX_KEY_LENGTH = 255
_FLAGS_OFFSET = 13  # the flags byte inside an index item
_SEQ_KEY = struct.Struct("<Q")
_CHUNK = 64 * 1024
_SCAN_SLICE = 0.002  # seconds a SCAN may spend collecting, as 0-db does

ScanItem = tuple[bytes, int, int]  # key, payload length, timestamp
HistoryStep = tuple[bytes | None, int, bytes]  # link to the older version, timestamp, payload
JumpListener = Callable[["Namespace", int, int], None]


class Namespace:
    def __init__(
        self,
        name: str,
        *,
        data_root: Path,
        index_root: Path,
        mode: int,
        datasize: int,
        policy: SyncPolicy,
        on_jump: JumpListener | None = None,
        cache: PayloadCache | None = None,
        on_missing: Callable[[Path], bool] | None = None,
    ) -> None:
        self.name = name
        self.data_dir = data_root / name
        self.index_dir = index_root / name
        self.mode = mode
        self.datasize = datasize
        self.on_jump = on_jump
        self.descriptor = NamespaceDescriptor(name=name)
        self.locked = False
        self.frozen = False
        self.keys: dict[bytes, Entry] = {}
        self.slots: list[Entry] = []
        self.entries = 0
        self.payload_bytes = 0
        self._inserts = 0  # user mode's "next internal id": inserts at runtime, entries at load
        self.dirty_files: set[int] = set()
        self._data_previous = 0
        # (file id, offset) of the index entry appended last; new entries point back at it.
        self._last_index: tuple[int, int] | None = None
        self.files = NamespaceFiles(
            self.data_dir,
            self.index_dir,
            policy=policy,
            cache=cache,
            on_missing=on_missing,
        )

    # -- descriptor -----------------------------------------------------------------------

    @property
    def password(self) -> str:
        return self.descriptor.password

    @property
    def public(self) -> bool:
        return self.descriptor.public

    @property
    def worm(self) -> bool:
        return self.descriptor.worm

    @property
    def maxsize(self) -> int:
        return self.descriptor.maxsize

    def update_descriptor(self, descriptor: NamespaceDescriptor) -> None:
        """Store ``descriptor`` (atomically: the old file stays whole if this fails), then use it."""
        try:
            raw = descriptor.pack()
        except ValueError as exc:
            raise CommandError("Invalid value") from exc  # nothing written, nothing changed
        self._write_descriptor(raw)
        self.descriptor = descriptor

    def _write_descriptor(self, raw: bytes) -> None:
        try:
            write_atomic(self.index_dir / NAMESPACE_FILE, raw, mode=0o600)
        except OSError as exc:
            raise StorageError(
                f"cannot write the descriptor of {self.name}: {exc.strerror or exc}"
            ) from exc

    # -- loading --------------------------------------------------------------------------

    def load(self, *, fixed_mode: int | None = None) -> None:
        """Read the descriptor and replay the files; create what is missing."""
        try:
            for directory in (self.index_dir, self.data_dir):
                if not directory.is_dir():
                    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    if self.files.policy.durable:  # the new namespace survives a power loss
                        fsync_directory(directory.parent)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directories of {self.name}: {exc.strerror or exc}"
            ) from exc
        self._load_descriptor()
        self.mode = self._detect_mode(fixed_mode)
        last = self._last_file_id()
        for fileid in range(last + 1):
            resume, covered = self._replay_index(fileid, is_last=fileid == last)
            self._replay_data(fileid, resume, covered, is_last=fileid == last)
        self.files.open(last, self.mode)

    def _load_descriptor(self) -> None:
        """Read ``zdb-namespace``; only a missing one means "new namespace, defaults".

        A short or damaged one is an error: falling back to defaults would serve a
        password-protected namespace to everybody.
        """
        path = self.index_dir / NAMESPACE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            descriptor = NamespaceDescriptor(name=self.name)
            self._write_descriptor(descriptor.pack())
            self.descriptor = descriptor
            return
        except OSError as exc:
            raise StorageError(
                f"cannot read the descriptor of {self.name}: {exc.strerror or exc}"
            ) from exc
        try:
            stored = NamespaceDescriptor.unpack(raw)
        except ValueError as exc:
            raise StorageError(f"namespace {self.name}: damaged {path}: {exc}") from exc
        # The directory name is the namespace's name; the stored one is informational.
        self.descriptor = NamespaceDescriptor(
            name=self.name,
            password=stored.password,
            maxsize=stored.maxsize,
            public=stored.public,
            worm=stored.worm,
        )

    def _detect_mode(self, fixed_mode: int | None) -> int:
        header = b""
        path = self.files.index_path(0)
        if path.is_file():
            with path.open("rb") as handle:
                header = handle.read(INDEX_HEADER.size)
        if len(header) < INDEX_HEADER.size:
            return self.mode if fixed_mode is None else fixed_mode
        mode = header[28]
        if mode not in (MODE_USER, MODE_SEQ):
            raise StorageError(f"namespace {self.name}: index mode {mode} is not supported")
        if fixed_mode is not None and mode != fixed_mode:
            raise StorageError(
                f"namespace {self.name}: index created in another mode than the running mode"
            )
        return mode

    def _last_file_id(self) -> int:
        last = 0
        while self.files.index_path(last + 1).is_file() or self.files.data_path(last + 1).is_file():
            last += 1
        return last

    def _replay_index(self, fileid: int, *, is_last: bool) -> tuple[int, int]:
        """Load index file ``fileid``; return (start, end) of the newest data entry it covers."""
        path = self.files.index_path(fileid)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return DATA_HEADER.size, DATA_HEADER.size
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if len(raw) < INDEX_HEADER.size:
            if raw and not is_last:
                raise StorageError(f"{path}: header corrupted or incomplete")
            _truncate(path, 0)  # a header torn by a crash: the file is rewritten on open
            return DATA_HEADER.size, DATA_HEADER.size
        magic, version, _, _, _, _ = INDEX_HEADER.unpack_from(raw)
        if magic != INDEX_MAGIC or version != INDEX_VERSION:
            raise StorageError(
                f"{path}: not a 0-db index file (magic {magic!r}, version {version})"
            )
        resume = covered = DATA_HEADER.size
        position = INDEX_HEADER.size
        end = len(raw)
        user = self.mode == MODE_USER
        unpack = INDEX_ITEM.unpack_from
        while position < end:
            if position + INDEX_ITEM.size > end or position + INDEX_ITEM.size + raw[position] > end:
                _truncate(path, position)  # a torn last entry: it was never acknowledged
                break
            (
                idlength,
                offset,
                length,
                previous,
                flags,
                dataid,
                timestamp,
                crc,
                parentid,
                parentoff,
            ) = unpack(raw, position)
            start = position + INDEX_ITEM.size
            # User mode: the payload is in the data file of the same id (0-db writes the
            # dataid field as 0 for first inserts and ignores it when loading); seq mode
            # updates slots in place, so there the stored dataid is the truth.
            if user:
                dataid = fileid
            entry = Entry(
                raw[start : start + idlength],
                dataid=dataid,
                offset=offset,
                length=length,
                crc=crc,
                timestamp=timestamp,
                indexid=fileid,
                idxoffset=position,
                previous=previous,
                flags=flags,
                parentid=parentid,
                parentoff=parentoff,
            )
            self._load_entry(entry)
            if dataid == fileid and offset >= resume:
                resume = offset
                covered = offset + DATA_ENTRY.size + idlength + length
            self._last_index = (fileid, position)
            position = start + idlength
        return resume, covered

    def _load_entry(self, entry: Entry) -> None:
        if self.mode == MODE_SEQ:
            self.slots.append(entry)
            if not entry.deleted:
                self._count(entry, +1)
            return
        old = self.keys.pop(entry.key, None)
        if old is not None:
            self._count(old, -1)
        if not entry.deleted:
            self.keys[entry.key] = entry
            self._count(entry, +1)
        self._inserts += 1

    def _replay_data(self, fileid: int, resume: int, covered: int, *, is_last: bool) -> None:
        """Apply data entries past ``covered`` that the index lacks (a crash between the two writes).

        The walk starts at ``resume``, the newest entry the index knows, so only the
        tail of a data file is read.
        """
        path = self.files.data_path(fileid)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        if size <= covered and not is_last:
            return
        with path.open("rb") as handle:
            position = resume
            last_entry = 0
            while position + DATA_ENTRY.size <= size:
                handle.seek(position)
                header = DataEntry.unpack(handle.read(DATA_ENTRY.size))
                total = DATA_ENTRY.size + header.idlength + header.datalength
                if position + total > size or header.idlength == 0:
                    break  # cut short, or zeros (no record has an empty key): a torn tail
                if position >= covered:
                    key = handle.read(header.idlength)
                    payload = handle.read(header.datalength)
                    if header.flags & DATA_FLAG_DELETED == 0 and crc32c(payload) != header.crc:
                        break  # torn payload at the tail
                    self._reapply(fileid, position, key, header)
                last_entry = position
                position += total
        if is_last:
            if position < size:
                _truncate(path, position)  # a torn last entry is dropped, nothing else
            self._data_previous = last_entry

    def _reapply(self, fileid: int, offset: int, key: bytes, header: DataEntry) -> None:
        """Redo the index side of a write whose data record is on disk but not indexed."""
        if self.files.fileid != fileid or self.files.index_size == 0:
            self.files.open(fileid, self.mode)
        existing = self.lookup(key)
        if header.flags & DATA_FLAG_DELETED:
            if existing is not None:
                self._index_delete(existing)
            return
        entry = Entry(
            key,
            dataid=fileid,
            offset=offset,
            length=header.datalength,
            crc=header.crc,
            timestamp=header.timestamp,
        )
        new_slot = len(key) == 8 and _SEQ_KEY.unpack(key)[0] == len(self.slots)
        if self.mode == MODE_SEQ and existing is None and not new_slot:
            return  # an update of a slot the index never had: nothing to attach it to
        self._index_set(entry, existing)

    # -- counters -------------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        """0-db's next internal id: the next sequence id, or in user mode the inserts."""
        return len(self.slots) if self.mode == MODE_SEQ else self._inserts

    def _count(self, entry: Entry, sign: int) -> None:
        self.entries += sign
        self.payload_bytes += sign * entry.length

    @property
    def index_memory(self) -> int:
        """0-db's estimate of the index memory, shown by NSINFO."""
        if self.mode == MODE_SEQ:
            return 72 * self.entries
        return sum(64 + len(key) for key in self.keys)

    # -- lookups --------------------------------------------------------------------------

    def lookup(self, key: bytes) -> Entry | None:
        if self.mode == MODE_USER:
            return self.keys.get(key)
        if len(key) != 8:
            return None
        slot = _SEQ_KEY.unpack(key)[0]
        if slot >= len(self.slots):
            return None
        entry = self.slots[slot]
        return None if entry.deleted else entry

    def payload(self, entry: Entry) -> bytes:
        return self.files.read_payload(entry.dataid, entry.offset, len(entry.key), entry.length)

    def get(self, key: bytes) -> bytes | None:
        entry = self.lookup(key)
        return None if entry is None else self.payload(entry)

    def check(self, entry: Entry) -> int:
        """1 if the stored payload matches its CRC, 0 if not, -1 if it cannot be read."""
        try:
            # From the file itself, never the cache: the point is to find damage on disk.
            header = DataEntry.unpack(
                self.files.read_data(entry.dataid, entry.offset, DATA_ENTRY.size)
            )
            payload = self.files.read_data(
                entry.dataid, entry.offset + DATA_ENTRY.size + header.idlength, header.datalength
            )
        except StorageError:
            return -1
        return 1 if crc32c(payload) == header.crc else 0

    def keycur(self, entry: Entry) -> bytes:
        return pack_cursor(len(entry.key), entry.indexid, entry.length, entry.idxoffset, entry.crc)

    # -- writes ---------------------------------------------------------------------------

    def set(self, key: bytes, value: bytes, timestamp: int) -> bytes | None:
        """Store ``value``; return the key written, or None when the payload is unchanged."""
        # The hot path of the server: one lookup, the CRC computed once, no properties.
        if not key:
            existing = None
        elif self.mode == MODE_USER:
            existing = self.keys.get(key)
        else:
            existing = self.lookup(key)
        descriptor = self.descriptor
        if existing is not None and descriptor.worm:
            raise CommandError("Namespace is protected by worm mode")
        size = len(value)
        if descriptor.maxsize and self.payload_bytes + size > descriptor.maxsize + (
            existing.length if existing else 0
        ):
            raise CommandError("No space left on this namespace")
        files = self.files
        if files.data_size + size > self.datasize:
            self.jump()
        if self.mode == MODE_USER:
            if not key:
                raise CommandError("Invalid argument, key needed")
        elif key:
            if existing is None:
                raise CommandError("Invalid key, only update authorized")
            key = existing.key
        else:
            key = _SEQ_KEY.pack(len(self.slots))
        crc = crc32c(value)
        if existing is not None and crc == existing.crc and size == existing.length:
            cached = files.cache.get(existing.dataid, existing.offset)
            if cached is not None:
                if cached == value:
                    return None
            else:
                try:
                    if self.payload(existing) == value:
                        return None
                except StorageError:
                    pass  # cannot compare: write it as an update
        offset = files.append_data(
            DATA_ENTRY.pack(len(key), size, self._data_previous, crc, 0, timestamp) + key + value
        )
        files.cache.put(files.fileid, offset, value)
        self._data_previous = offset
        entry = Entry(
            key, dataid=files.fileid, offset=offset, length=size, crc=crc, timestamp=timestamp
        )
        self._index_set(entry, existing)
        return key

    def delete(self, key: bytes, timestamp: int) -> None:
        existing = self.lookup(key)
        if existing is None:
            raise CommandError("Key not found")
        if self.worm:
            raise CommandError("Cannot delete a key when namespace is in worm mode")
        header = DataEntry(
            len(existing.key), 0, self._data_previous, 0, DATA_FLAG_DELETED, timestamp
        )
        self._data_previous = self.files.append_data(header.pack(existing.key))
        self._index_delete(existing)

    def _append_index(self, entry: Entry) -> None:
        entry.previous = 0 if self._last_index is None else self._last_index[1]
        entry.indexid = self.files.fileid
        entry.idxoffset = self.files.append_index(entry.pack())
        self._last_index = (entry.indexid, entry.idxoffset)

    def _flag_deleted(self, entry: Entry) -> None:
        entry.flags |= INDEX_FLAG_DELETED
        self.files.patch_index(entry.indexid, entry.idxoffset + _FLAGS_OFFSET, bytes([entry.flags]))
        self.dirty_files.add(entry.indexid)

    def _index_set(self, entry: Entry, existing: Entry | None) -> None:
        if self.mode == MODE_USER:
            if existing is not None:
                self._flag_deleted(existing)
                self._count(existing, -1)
                entry.parentid, entry.parentoff = existing.indexid, existing.idxoffset
            else:
                self._inserts += 1
            self._append_index(entry)
            self.keys[entry.key] = entry
            self._count(entry, +1)
            return
        if existing is None:
            self._append_index(entry)
            self.slots.append(entry)
            self._count(entry, +1)
            return
        # Seq update: keep the old version as a flagged copy (it takes the next slot),
        # then rewrite the slot in place pointing at that copy as its parent.
        history = existing.copy()
        history.flags |= INDEX_FLAG_DELETED
        self._append_index(history)
        self.slots.append(history)
        entry.parentid, entry.parentoff = history.indexid, history.idxoffset
        entry.indexid, entry.idxoffset, entry.previous = (
            existing.indexid,
            existing.idxoffset,
            existing.previous,
        )
        self.files.patch_index(entry.indexid, entry.idxoffset, entry.pack())
        self.dirty_files.add(entry.indexid)
        self.slots[_SEQ_KEY.unpack(entry.key)[0]] = entry
        self._count(existing, -1)
        self._count(entry, +1)

    def _index_delete(self, existing: Entry) -> None:
        self._flag_deleted(existing)
        self._count(existing, -1)
        if self.mode == MODE_USER:
            del self.keys[existing.key]

    def jump(self) -> None:
        """Start the next data and index files (rotation or NSJUMP)."""
        old = self.files.fileid
        new = self.files.rotate(self.mode)
        if self.on_jump is not None:
            self.on_jump(self, old, new)

    # -- scans and history ----------------------------------------------------------------

    def _read_item(self, fileid: int, offset: int, idlength: int | None = None) -> IndexItem:
        """The index item at (file, offset); its key length is read from disk unless given."""
        self.files.write_out()
        try:
            with self.files.index_path(fileid).open("rb") as handle:
                handle.seek(offset)
                raw = handle.read(
                    INDEX_ITEM.size + (MAX_KEY_LENGTH if idlength is None else idlength)
                )
        except OSError as exc:
            self.files.stats.index_failed(write=False)
            raise StorageError(f"cannot read index file {fileid}: {exc}") from exc
        self.files.stats.index_read_bytes += len(raw)
        if len(raw) < INDEX_ITEM.size:
            raise StorageError("index entry out of range")
        size = raw[0] if idlength is None else idlength
        if len(raw) < INDEX_ITEM.size + size:
            raise StorageError("index entry out of range")
        return IndexItem.unpack(raw, 0, size)

    def _cursor_item(self, cursor: bytes) -> tuple[int, int, IndexItem]:
        try:
            idlength, fileid, length, offset, crc = unpack_cursor(cursor)
            item = self._read_item(fileid, offset, idlength)
        except (ValueError, StorageError):
            raise CommandError("Invalid key format") from None
        if item.length != length or item.crc != crc:
            raise CommandError("Invalid key format")
        return fileid, offset, item

    def _walk_forward(self, fileid: int, offset: int) -> Iterator[tuple[int, int, IndexItem]]:
        self.files.write_out()
        while self.files.index_exists(fileid):
            with self.files.index_path(fileid).open("rb") as handle:
                handle.seek(offset)
                buffer = b""
                start = 0  # where the next item begins in ``buffer``
                position = offset  # and in the file
                while True:
                    if len(buffer) - start < INDEX_ITEM.size + MAX_KEY_LENGTH:
                        chunk = handle.read(_CHUNK)
                        self.files.stats.index_read_bytes += len(chunk)
                        buffer = buffer[start:] + chunk
                        start = 0
                    left = len(buffer) - start
                    if left < INDEX_ITEM.size or left < INDEX_ITEM.size + buffer[start]:
                        break
                    item = IndexItem.unpack(buffer, start)
                    yield fileid, position, item
                    start += item.size
                    position += item.size
            fileid += 1
            offset = INDEX_HEADER.size

    def scan(self, cursor: bytes | None) -> tuple[bytes, list[ScanItem]]:
        """Forward scan from the start or after ``cursor``: (cursor of the last item, items)."""
        if cursor is None:
            start = (0, INDEX_HEADER.size)
            skip_first = False
        else:
            fileid, offset, _ = self._cursor_item(cursor)
            start = (fileid, offset)
            skip_first = True
        return self._collect(self._walk_forward(*start), skip_first)

    def rscan(self, cursor: bytes | None) -> tuple[bytes, list[ScanItem]]:
        """Backward scan from the newest entry or before ``cursor``."""
        if cursor is None:
            if self._last_index is None:
                raise CommandError("No more data")
            walk = self._walk_backward(*self._last_index)
            return self._collect(walk, False)
        fileid, offset, _ = self._cursor_item(cursor)
        return self._collect(self._walk_backward(fileid, offset), True)

    def _walk_backward(self, fileid: int, offset: int) -> Iterator[tuple[int, int, IndexItem]]:
        while True:
            try:
                item = self._read_item(fileid, offset)
            except StorageError:
                return
            yield fileid, offset, item
            if item.previous == 0:
                return
            if item.previous >= offset:  # the previous entry is in the previous file
                fileid -= 1
            offset = item.previous

    def _collect(
        self, walk: Iterator[tuple[int, int, IndexItem]], skip_first: bool
    ) -> tuple[bytes, list[ScanItem]]:
        items: list[ScanItem] = []
        last: tuple[int, int, IndexItem] | None = None
        deadline = time.monotonic() + _SCAN_SLICE
        for position in walk:
            if skip_first:
                skip_first = False
                continue
            fileid, offset, item = position
            if item.flags & INDEX_FLAG_DELETED:
                continue
            items.append((item.key, item.length, item.timestamp))
            last = position
            if time.monotonic() > deadline:
                break
        if last is None:
            raise CommandError("No more data")
        fileid, offset, item = last
        return pack_cursor(len(item.key), fileid, item.length, offset, item.crc), items

    def history(self, key: bytes, link: bytes | None) -> HistoryStep:
        """One step back through a key's versions: HISTORY key [link]."""
        if link is None:
            entry = self.lookup(key)
            if entry is None:
                raise CommandError("Key not found")
            fileid, offset = entry.indexid, entry.idxoffset
            try:
                item = self._read_item(fileid, offset, len(entry.key))
            except StorageError:
                raise CommandError("Internal Error") from None
        else:
            fileid, offset = struct.unpack("<II", link)
            if fileid == 0 and offset == 0:
                raise CommandError("No more history")
            try:
                item = self._read_item(fileid, offset, len(key))
            except StorageError:
                raise CommandError("Invalid arguments (index query)") from None
            if item.key[: len(key)] != key:
                raise CommandError("Invalid arguments (invalid key)")
        dataid = fileid if self.mode == MODE_USER else item.dataid
        try:
            payload = self.files.read_payload(dataid, item.offset, len(item.key), item.length)
        except StorageError:
            raise CommandError("Internal Error") from None
        parent = (
            None
            if item.parentid == 0 and item.parentoff == 0
            else struct.pack("<II", item.parentid, item.parentoff)
        )
        return parent, item.timestamp, payload

    def data_raw(self, fileid: int, offset: int) -> tuple[bytes, int, int, int, int, bytes]:
        """The data entry at (file, offset): key, previous, crc, flags, timestamp, payload."""
        path = self.files.data_path(fileid)
        self.files.write_out()
        try:
            size = path.stat().st_size
        except OSError:
            raise CommandError("Invalid Request") from None
        if offset >= size:
            raise CommandError("EOF")
        try:
            header = DataEntry.unpack(self.files.read_data(fileid, offset, DATA_ENTRY.size))
            if header.datalength > 8 * 1024 * 1024 or header.flags & DATA_FLAG_DELETED:
                raise CommandError("Unexpected Internal Error")
            key = self.files.read_data(fileid, offset + DATA_ENTRY.size, header.idlength)
            payload = self.files.read_data(
                fileid, offset + DATA_ENTRY.size + header.idlength, header.datalength
            )
        except StorageError:
            raise CommandError("Unexpected Internal Error") from None
        if header.datalength == 0:
            raise CommandError("Invalid Request")
        return key, header.previous, header.crc, header.flags, header.timestamp, payload

    # -- life -----------------------------------------------------------------------------

    def write_out(self) -> None:
        self.files.write_out()

    def close(self) -> None:
        self.files.close()

    def reset_memory(self) -> None:
        """Forget everything loaded (before a reload)."""
        self.files.close()
        self.files.cache.clear()
        self.keys.clear()
        self.slots.clear()
        self.entries = self.payload_bytes = self._inserts = 0
        self.dirty_files.clear()
        self._data_previous = 0
        self._last_index = None


def _truncate(path: Path, size: int) -> None:
    try:
        os.truncate(path, size)
    except OSError as exc:
        raise StorageError(f"cannot cut the torn tail of {path}: {exc.strerror or exc}") from exc
