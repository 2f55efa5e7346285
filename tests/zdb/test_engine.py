"""The storage engine without a socket: writes, reloads, rotation, seq mode, torn tails, rebuilds."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from zgrid.zdb import MODE_SEQ, MODE_USER, CommandError, StorageError, Store, crc32c
from zgrid.zdb.files import PayloadCache, SyncPolicy
from zgrid.zdb.formats import (
    DATA_ENTRY,
    DATA_HEADER,
    INDEX_HEADER,
    INDEX_ITEM,
    DataEntry,
    IndexItem,
)
from zgrid.zdb.namespace import Namespace

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = 512 * 1024


def open_namespace(
    root: Path, name: str = "default", mode: int = MODE_USER, datasize: int = SMALL
) -> Namespace:
    namespace = Namespace(
        name,
        data_root=root / "data",
        index_root=root / "index",
        mode=mode,
        datasize=datasize,
        policy=SyncPolicy(),
    )
    namespace.load()
    return namespace


def reopen(namespace: Namespace, root: Path) -> Namespace:
    namespace.write_out()
    namespace.close()
    return open_namespace(root, namespace.name, namespace.mode, namespace.datasize)


def seq(number: int) -> bytes:
    return struct.pack("<Q", number)


def test_crc_is_0db_variant() -> None:
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0x58E3FA20
    assert crc32c(b"world") == 0x74D8F77B


def test_write_reload_overwrite_delete(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    assert namespace.set(b"a", b"one", 10) == b"a"
    assert namespace.set(b"a", b"one", 11) is None  # identical payload: nothing written
    assert namespace.set(b"a", b"two", 12) == b"a"
    assert namespace.set(b"b", b"", 13) == b"b"
    namespace.delete(b"b", 14)
    with pytest.raises(CommandError, match="Key not found"):
        namespace.delete(b"b", 15)
    namespace = reopen(namespace, tmp_path)
    assert namespace.get(b"a") == b"two"
    assert namespace.get(b"b") is None
    assert (namespace.entries, namespace.payload_bytes) == (1, 3)
    parent, timestamp, payload = namespace.history(b"a", None)
    assert (timestamp, payload) == (12, b"two")
    assert parent is not None
    assert namespace.history(b"a", parent)[1:] == (10, b"one")
    assert namespace.history(b"a", parent)[0] is None


def test_rotation_keeps_everything_readable_and_scannable(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    value = b"x" * 100_000
    keys = [f"key-{i}".encode() for i in range(12)]
    for key in keys:
        namespace.set(key, value + key, 1)
    assert namespace.files.fileid >= 2
    namespace = reopen(namespace, tmp_path)
    assert all(namespace.get(key) == value + key for key in keys)
    forward: list[bytes] = []
    cursor = None
    while True:
        try:
            cursor, items = namespace.scan(cursor)
        except CommandError:
            break
        forward += [key for key, _, _ in items]
    assert forward == keys
    backward: list[bytes] = []
    cursor = None
    while True:
        try:
            cursor, items = namespace.rscan(cursor)
        except CommandError:
            break
        backward += [key for key, _, _ in items]
    assert backward == keys[::-1]


def test_seq_mode_ids_updates_and_reload(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path, mode=MODE_SEQ)
    assert namespace.set(b"", b"a", 1) == seq(0)
    assert namespace.set(b"", b"b", 1) == seq(1)
    assert namespace.set(seq(0), b"a2", 2) == seq(0)
    assert namespace.set(b"", b"c", 3) == seq(3)  # the update used id 2 for the old version
    with pytest.raises(CommandError, match="only update authorized"):
        namespace.set(seq(2), b"no", 4)
    namespace.delete(seq(1), 5)
    namespace = reopen(namespace, tmp_path)
    assert [namespace.get(seq(i)) for i in range(5)] == [b"a2", None, None, b"c", None]
    parent, _, payload = namespace.history(seq(0), None)
    assert payload == b"a2"
    assert parent is not None
    assert namespace.history(seq(0), parent)[2] == b"a"


def test_user_fixture_written_by_0db(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "user", tmp_path / "user")
    namespace = open_namespace(tmp_path / "user")
    assert namespace.files.fileid == 3
    assert namespace.get(b"k1") == b"v1-overwritten"
    assert namespace.get(b"k2") is None
    for number in range(40):
        assert (
            namespace.get(f"key-{number:02d}".encode())
            == (f"value-{number:02d}-" * 40)[:200].encode()
        )
    assert namespace.entries == 41
    assert all(namespace.check(namespace.keys[key]) == 1 for key in namespace.keys)
    ns2 = open_namespace(tmp_path / "user", "ns2")
    assert (ns2.password, ns2.public, ns2.get(b"a")) == ("secret", True, b"1")


def test_seq_fixture_written_by_0db(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "seq", tmp_path / "seq")
    namespace = open_namespace(tmp_path / "seq", mode=MODE_SEQ)
    expected = [f"seq-value-{i}".encode() for i in range(10)]
    expected[3] = b"seq-value-3-updated"
    expected[5] = None  # type: ignore[call-overload]
    assert [namespace.get(seq(i)) for i in range(10)] == expected
    assert namespace.set(b"", b"next", 1) == seq(11)  # slot 10 holds id 3's old version


def test_our_files_have_0db_layout(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    namespace.set(b"key", b"value", 1234)
    namespace.write_out()
    data = (tmp_path / "data" / "default" / "d0").read_bytes()
    index = (tmp_path / "index" / "default" / "i0").read_bytes()
    assert data[: DATA_HEADER.size] == b"DAT0" + struct.pack("<IQQI", 3, 0, 0, 0)
    assert index[: INDEX_HEADER.size] == b"IDX0" + struct.pack("<IQQIB", 4, 0, 0, 0, 0)
    entry = DataEntry.unpack(data, DATA_HEADER.size)
    assert (entry.idlength, entry.datalength, entry.crc, entry.flags, entry.timestamp) == (
        3,
        5,
        crc32c(b"value"),
        0,
        1234,
    )
    assert data[DATA_HEADER.size + DATA_ENTRY.size :] == b"keyvalue"
    item = IndexItem.unpack(index, INDEX_HEADER.size)
    assert (item.key, item.offset, item.length, item.flags, item.crc, item.timestamp) == (
        b"key",
        DATA_HEADER.size,
        5,
        0,
        crc32c(b"value"),
        1234,
    )
    assert len(index) == INDEX_HEADER.size + INDEX_ITEM.size + 3


def test_torn_index_entry_is_cut_and_data_replayed(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    namespace.set(b"kept", b"1", 1)
    namespace.set(b"torn", b"2", 2)
    namespace.write_out()
    namespace.close()
    index = tmp_path / "index" / "default" / "i0"
    os.truncate(index, index.stat().st_size - 3)  # the last index entry lost its tail
    namespace = open_namespace(tmp_path)
    # The data record of "torn" is complete, so the index is rebuilt from it.
    assert (namespace.get(b"kept"), namespace.get(b"torn")) == (b"1", b"2")
    namespace = reopen(namespace, tmp_path)
    assert namespace.get(b"torn") == b"2"


def test_torn_data_entry_is_dropped_nothing_else(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    namespace.set(b"kept", b"1" * 100, 1)
    namespace.write_out()
    size = (tmp_path / "data" / "default" / "d0").stat().st_size
    namespace.set(b"torn", b"2" * 100, 2)
    namespace.write_out()
    namespace.close()
    data = tmp_path / "data" / "default" / "d0"
    index = tmp_path / "index" / "default" / "i0"
    os.truncate(data, data.stat().st_size - 10)  # the payload never fully reached the disk
    os.truncate(index, index.stat().st_size - (INDEX_ITEM.size + 4))  # nor its index entry
    namespace = open_namespace(tmp_path)
    assert namespace.get(b"kept") == b"1" * 100
    assert namespace.get(b"torn") is None
    assert data.stat().st_size == size  # the torn record was cut off
    namespace.set(b"after", b"3", 3)
    namespace = reopen(namespace, tmp_path)
    assert (namespace.get(b"kept"), namespace.get(b"after")) == (b"1" * 100, b"3")


def test_missing_index_is_rebuilt_from_data(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    for number in range(30):
        namespace.set(f"k{number}".encode(), b"v" * 50_000, number)
    namespace.set(b"k3", b"changed", 99)
    namespace.delete(b"k4", 100)
    namespace.write_out()
    namespace.close()
    for index in (tmp_path / "index" / "default").glob("i*"):
        index.unlink()
    namespace = open_namespace(tmp_path)
    assert namespace.get(b"k3") == b"changed"
    assert namespace.get(b"k4") is None
    assert namespace.get(b"k29") == b"v" * 50_000
    assert namespace.entries == 29
    assert namespace.history(b"k3", None)[0] is not None


def test_store_locks_its_roots(tmp_path: Path) -> None:
    store = Store(data_root=tmp_path / "d", index_root=tmp_path / "i", datasize=SMALL)
    store.open()
    second = Store(data_root=tmp_path / "d", index_root=tmp_path / "i", datasize=SMALL)
    with pytest.raises(StorageError, match="in use by another zdb instance"):
        second.open()
    store.close()


def test_store_refuses_same_dir_and_bad_datasize(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="must be different"):
        Store(data_root=tmp_path, index_root=tmp_path).open()
    with pytest.raises(StorageError, match="datasize"):
        Store(data_root=tmp_path / "d", index_root=tmp_path / "i", datasize=4096)


def test_mode_mismatch_is_refused(tmp_path: Path) -> None:
    open_namespace(tmp_path, mode=MODE_SEQ).close()
    with pytest.raises(StorageError, match="another mode"):
        Namespace(
            "default",
            data_root=tmp_path / "data",
            index_root=tmp_path / "index",
            mode=MODE_USER,
            datasize=SMALL,
            policy=SyncPolicy(),
        ).load(fixed_mode=MODE_USER)


class FsyncRecorder:
    """Stands in for os.fsync in the files module and remembers which files were synced."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name[0] in "di" and name[1:].isdigit():  # data and index files, not descriptors
            self.paths.append(name)


def test_sync_fsyncs_data_and_index_at_every_write_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = FsyncRecorder()
    monkeypatch.setattr("zgrid.zdb.files.os.fsync", recorder)
    namespace = Namespace(
        "default",
        data_root=tmp_path / "data",
        index_root=tmp_path / "index",
        mode=MODE_USER,
        datasize=SMALL,
        policy=SyncPolicy(sync=True),
    )
    namespace.load()
    namespace.set(b"a", b"1", 1)
    namespace.write_out()
    assert recorder.paths == ["d0", "i0"]  # the data before the index that points at it
    namespace.write_out()  # nothing new: nothing to sync
    assert recorder.paths == ["d0", "i0"]


def test_synctime_keeps_a_clock_per_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = FsyncRecorder()
    now = [1000.0]
    monkeypatch.setattr("zgrid.zdb.files.os.fsync", recorder)
    monkeypatch.setattr("zgrid.zdb.files.time.monotonic", lambda: now[0])
    store = Store(data_root=tmp_path / "d", index_root=tmp_path / "i", datasize=SMALL, synctime=5)
    store.open()
    second = store.create("second")
    for namespace in (store.default, second):
        namespace.set(b"k", b"v", 1)
    store.write_out()
    assert recorder.paths == []  # 5 s have not passed for either
    now[0] += 6
    for namespace in (store.default, second):
        namespace.set(b"k", b"w", 2)
    store.write_out()
    assert sorted(recorder.paths) == ["d0", "d0", "i0", "i0"]  # both, not only the first one
    store.close()


def test_check_reads_the_disk_not_the_cache(tmp_path: Path) -> None:
    namespace = Namespace(
        "default",
        data_root=tmp_path / "data",
        index_root=tmp_path / "index",
        mode=MODE_USER,
        datasize=SMALL,
        policy=SyncPolicy(),
        cache=PayloadCache(1 << 20),
    )
    namespace.load()
    namespace.set(b"key", b"payload", 1)
    namespace.write_out()
    entry = namespace.keys[b"key"]
    assert namespace.check(entry) == 1
    data = tmp_path / "data" / "default" / "d0"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF  # flip a bit of the payload on disk; the cache still holds the good copy
    data.write_bytes(bytes(raw))
    assert namespace.get(b"key") == b"payload"
    assert namespace.check(entry) == 0


def test_zero_filled_tail_is_not_replayed(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path)
    namespace.set(b"kept", b"1", 1)
    namespace.write_out()
    namespace.close()
    data = tmp_path / "data" / "default" / "d0"
    size = data.stat().st_size
    with data.open("ab") as handle:
        handle.write(bytes(DATA_ENTRY.size * 3))  # what a power cut can leave: zeros
    namespace = open_namespace(tmp_path)
    assert namespace.entries == 1
    assert b"" not in namespace.keys
    assert data.stat().st_size == size


def test_payload_cache_stays_within_its_budget() -> None:
    cache = PayloadCache(1000)
    for offset in range(100):
        cache.put(0, offset, bytes(100))
    assert cache.size <= 1000
    assert cache.get(0, 99) == bytes(100)  # the newest stay
    assert cache.get(0, 0) is None  # the oldest went first


@pytest.mark.parametrize("mode", [MODE_USER, MODE_SEQ])
def test_an_overwrite_not_written_out_never_hides_the_written_value(
    tmp_path: Path, mode: int
) -> None:
    # What kill -9 leaves when it strikes before a write-out: the files as they are now,
    # read by a new process. The old value was acknowledged; it must still be there.
    namespace = open_namespace(tmp_path, mode=mode)
    key = namespace.set(b"" if mode == MODE_SEQ else b"key", b"acknowledged", 1)
    assert key is not None
    namespace.write_out()
    namespace.set(key, b"in flight", 2)
    namespace.delete(key, 3) if mode == MODE_USER else namespace.set(key, b"in flight again", 3)
    after_crash = open_namespace(tmp_path, mode=mode)
    assert after_crash.get(key) == b"acknowledged"
    namespace.write_out()
    assert open_namespace(tmp_path, mode=mode).get(key) == (
        None if mode == MODE_USER else b"in flight again"
    )
