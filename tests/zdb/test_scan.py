"""Walking a namespace (SCAN, SCANX, RSCAN, HISTORY) across rotated files; DATA RAW, INDEX DIRTY."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest
import redis

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import (
    crc32c_zdb,
    error_of,
    fresh_namespace,
    info_fields,
    shared_server,
)

# Data files rotate at 512 KiB (0-db's smallest size): a few hundred KiB make several files.
server = shared_server("server", "--datasize", "512k")

BIG = 100 * 1024


@pytest.fixture
def db(server: ZdbProcess) -> Iterator[redis.Redis]:
    _, client = fresh_namespace(server)
    yield client
    client.close()


def walk(client: redis.Redis, command: str) -> tuple[list[bytes], list[bytes]]:
    """Every key a full SCAN/SCANX/RSCAN walk returns, and the cursors it went through."""
    keys: list[bytes] = []
    cursors: list[bytes] = []
    cursor: bytes | None = None
    for _ in range(10_000):
        try:
            reply = client.execute_command(command, *([] if cursor is None else [cursor]))
        except redis.ResponseError as exc:
            assert str(exc) == "No more data"
            return keys, cursors
        cursor, items = reply
        assert len(cursor) == 17 and items
        assert cursor == client.execute_command("KEYCUR", items[-1][0])
        keys.extend(item[0] for item in items)
        cursors.append(cursor)
    raise AssertionError("the walk never ended")


def current_file(client: redis.Redis, name: str) -> int:
    return int(info_fields(client.execute_command("NSINFO", name))["data_current_id"])


def test_scan_and_rscan_walk_everything_across_rotated_files(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    for index in range(30):
        assert client.execute_command("SET", f"k{index:02}", bytes([index]) * BIG) == (
            f"k{index:02}".encode()
        )
    assert current_file(client, name) >= 4
    assert sorted(p.name for p in (server.data / name).iterdir())[:3] == ["d0", "d1", "d2"]
    client.execute_command("SET", "k03", "small now")  # moves to the end
    client.execute_command("DEL", "k05")  # disappears
    expected = [f"k{i:02}".encode() for i in range(30) if i not in (3, 5)] + [b"k03"]

    forward, cursors = walk(client, "SCAN")
    assert forward == expected
    assert walk(client, "SCANX")[0] == expected
    backward, _ = walk(client, "RSCAN")
    assert backward == expected[::-1]

    # Each item is [key, payload length, timestamp].
    _, items = client.execute_command("SCAN")
    assert items[0][0] == b"k00" and items[0][1] == BIG
    assert abs(items[0][2] - time.time()) < 60
    # After the cursor of a key: the keys written after it, from any file.
    _, after = client.execute_command("SCAN", client.execute_command("KEYCUR", "k10"))
    assert after[0][0] == b"k11"
    _, before = client.execute_command("RSCAN", client.execute_command("KEYCUR", "k10"))
    assert before[0][0] == b"k09"
    # Past the last entry, before the first: nothing.
    assert error_of(client, "SCAN", cursors[-1]) == "No more data"
    assert error_of(client, "RSCAN", client.execute_command("KEYCUR", "k00")) == "No more data"
    # Everything still reads back from its own file.
    assert client.execute_command("GET", "k00") == bytes([0]) * BIG
    assert client.execute_command("GET", "k29") == bytes([29]) * BIG
    assert client.execute_command("CHECK", "k17") == 1
    client.close()


def test_scan_of_an_empty_namespace_has_no_data(db: redis.Redis) -> None:
    assert error_of(db, "SCAN") == "No more data"
    assert error_of(db, "SCANX") == "No more data"
    assert error_of(db, "RSCAN") == "No more data"
    db.execute_command("SET", "only", "one")
    db.execute_command("DEL", "only")
    assert error_of(db, "SCAN") == "No more data"


def test_scan_rejects_bad_cursors(db: redis.Redis) -> None:
    db.execute_command("SET", "a", "1")
    db.execute_command("SET", "b", "22")
    good = db.execute_command("KEYCUR", "a")
    keylen, fileid, length, offset, crc = struct.unpack("<BIIII", good)
    bad = [
        b"abc",
        good[:16],
        good + b"x",
        struct.pack("<BIIII", keylen, 99, length, offset, crc),  # no such file
        struct.pack("<BIIII", keylen, fileid, length + 1, offset, crc),  # length differs
        struct.pack("<BIIII", keylen, fileid, length, offset, crc ^ 1),  # crc differs
        struct.pack("<BIIII", keylen, fileid, length, 10**6, crc),  # beyond the file
    ]
    for cursor in bad:
        for command in ("SCAN", "SCANX", "RSCAN"):
            assert error_of(db, command, cursor) == "Invalid key format", (command, cursor)
    # Extra arguments after the cursor are ignored.
    assert db.execute_command("SCAN", good, "ignored")[1] == [
        [b"b", 2, db.execute_command("KEYTIME", "b")]
    ]
    # An overwritten entry's cursor stays valid (the old entry stays on disk).
    db.execute_command("SET", "a", "changed")
    assert db.execute_command("SCAN", good)[1][0][0] == b"b"


def test_rscan_right_after_a_jump_lists_everything(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    for key in ("a", "b", "c"):
        client.execute_command("SET", key, key * 10)
    assert client.execute_command("NSJUMP") == b"OK"
    assert current_file(client, name) == 1
    assert walk(client, "RSCAN")[0] == [b"c", b"b", b"a"]
    assert walk(client, "SCAN")[0] == [b"a", b"b", b"c"]
    client.execute_command("SET", "d", "in file 1")
    assert walk(client, "RSCAN")[0] == [b"d", b"c", b"b", b"a"]
    client.close()


def follow_history(client: redis.Redis, key: bytes | str) -> list[tuple[bytes, bytes]]:
    """(timestamp, payload) of every version of ``key``, newest first."""
    versions: list[tuple[bytes, bytes]] = []
    link, stamp, payload = client.execute_command("HISTORY", key)
    versions.append((stamp, payload))
    while link is not None:
        assert len(link) == 8
        link, stamp, payload = client.execute_command("HISTORY", key, link)
        versions.append((stamp, payload))
        assert len(versions) < 100
    return versions


def test_history_walks_every_version_to_the_end(db: redis.Redis) -> None:
    for number, value in enumerate((b"first", b"second", b"third", b"fourth")):
        db.execute_command("SET", "doc", value, str(1000 + number))
    db.execute_command("SET", "other", "noise")
    assert follow_history(db, "doc") == [
        (b"1003", b"fourth"), (b"1002", b"third"), (b"1001", b"second"), (b"1000", b"first"),
    ]  # fmt: skip
    stamp = db.execute_command("KEYTIME", "other")
    assert follow_history(db, "other") == [(b"%d" % stamp, b"noise")]
    link = db.execute_command("HISTORY", "doc")[0]
    # The link belongs to that key; the chain is still readable after a DEL.
    assert error_of(db, "HISTORY", "other", link) == "Invalid arguments (invalid key)"
    db.execute_command("DEL", "doc")
    assert error_of(db, "HISTORY", "doc") == "Key not found"
    assert db.execute_command("HISTORY", "doc", link)[2] == b"third"
    assert error_of(db, "HISTORY", "doc", bytes(8)) == "No more history"
    assert error_of(db, "HISTORY", "doc", b"short") == "Invalid arguments"
    assert (
        error_of(db, "HISTORY", "doc", struct.pack("<II", 7, 29))
        == "Invalid arguments (index query)"
    )
    assert error_of(db, "HISTORY") == "Invalid arguments"
    assert error_of(db, "HISTORY", "a", "b", "c") == "Invalid arguments"
    assert error_of(db, "HISTORY", "never") == "Key not found"


def test_history_across_rotated_files(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    versions = [bytes([n]) * BIG for n in range(8)]
    for number, version in enumerate(versions):
        client.execute_command("SET", "big", version)
        client.execute_command("SET", "filler", bytes([100 + number]) * BIG)
    assert current_file(client, name) >= 2
    assert [payload for _, payload in follow_history(client, "big")] == versions[::-1]
    client.close()


def test_history_in_seq_mode(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SELECT", "default")
    assert client.execute_command("NSSET", name, "mode", "seq") == b"OK"
    client.execute_command("SELECT", name)
    first = client.execute_command("SET", "", "v1")
    assert client.execute_command("SET", first, "v2") == first
    assert client.execute_command("SET", first, "v3") == first
    assert [payload for _, payload in follow_history(client, first)] == [b"v3", b"v2", b"v1"]
    assert walk(client, "SCAN")[0] == [first]  # the old versions are not listed
    client.close()


# -- DATA RAW, INDEX DIRTY, RELOAD -------------------------------------------------------------


def test_data_raw_reads_entries_of_the_data_file(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "k", "hello", "1700000000")
    client.execute_command("SET", "key2", "world", "1700000001")
    first = client.execute_command("DATA", "RAW", "0", "28")  # right after the 28-byte header
    assert first == [b"k", 0, b"0x%08x" % crc32c_zdb(b"hello"), 0, 1700000000, b"hello"]
    second_offset = 28 + 18 + 1 + 5
    second = client.execute_command("data", "raw", "0", str(second_offset))
    assert second == [b"key2", 28, b"0x74d8f77b", 0, 1700000001, b"world"]
    end = second_offset + 18 + 4 + 5
    assert int(info_fields(client.execute_command("NSINFO", name))["data_current_offset"]) == end
    assert error_of(client, "DATA", "RAW", "0", str(end)) == "EOF"
    assert error_of(client, "DATA", "RAW", "0", "999999") == "EOF"
    assert error_of(client, "DATA", "RAW", "5", "28") == "Invalid Request"
    client.execute_command("SET", "empty", "")
    assert error_of(client, "DATA", "RAW", "0", str(end)) == "Invalid Request"
    client.execute_command("DEL", "k")
    deletion = end + 18 + 5
    assert error_of(client, "DATA", "RAW", "0", str(deletion)) == "Unexpected Internal Error"
    assert error_of(client, "DATA") == "Missing arguments"
    assert error_of(client, "DATA", "RAW", "0") == "Missing arguments"
    assert error_of(client, "DATA", "RAW", "", "28") == "Invalid argument"
    assert error_of(client, "DATA", "COOKED", "0", "28") == "Unknown DATA subcommand"
    assert error_of(client, "DATA", b"R" * 257) == "Argument too long"
    client.close()


def test_index_dirty_lists_files_rewritten_in_place(db: redis.Redis) -> None:
    assert db.execute_command("INDEX", "DIRTY") == []
    db.execute_command("SET", "a", "1")
    db.execute_command("SET", "b", "1")
    assert db.execute_command("INDEX", "DIRTY") == []  # appends only
    db.execute_command("SET", "a", "2")  # flags the old entry of a in i0
    assert db.execute_command("index", "dirty") == [0]
    assert db.execute_command("INDEX", "DIRTY", "reset") == b"OK"
    assert db.execute_command("INDEX", "DIRTY") == []
    db.execute_command("NSJUMP")
    db.execute_command("SET", "c", "1")
    db.execute_command("SET", "c", "2")  # i1
    assert db.execute_command("INDEX", "DIRTY") == [1]
    db.execute_command("DEL", "b")  # i0
    assert db.execute_command("INDEX", "DIRTY") == [0, 1]
    assert db.execute_command("INDEX", "DIRTY", "x", "y") == [0, 1]
    assert error_of(db, "INDEX") == "Missing arguments"
    assert error_of(db, "INDEX", "") == "Invalid argument"
    assert error_of(db, "INDEX", "CLEAN") == "Unknown INDEX subcommand"
    assert error_of(db, "INDEX", "DIRTY", "WIPE") == "Unknown INDEX DIRTY subcommand"
    assert error_of(db, "INDEX", b"D" * 257) == "Argument too long"
    assert error_of(db, "INDEX", "DIRTY", b"R" * 257) == "Argument too long"


def test_reload_reads_the_namespace_again(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "a", "1")
    client.execute_command("SET", "a", "2")
    client.execute_command("SET", "b", "3")
    assert client.execute_command("INDEX", "DIRTY") == [0]
    assert client.execute_command("RELOAD", name) == b"OK"
    assert client.execute_command("INDEX", "DIRTY") == []
    assert client.execute_command("MGET", "a", "b") == [b"2", b"3"]
    assert client.execute_command("DBSIZE") == 2
    client.execute_command("SET", "c", "4")  # the client stays attached
    assert walk(client, "SCAN")[0] == [b"a", b"b", b"c"]
    assert error_of(client, "RELOAD", "nope") == "Namespace not found"
    assert error_of(client, "RELOAD") == "Unexpected arguments"
    assert error_of(client, "RELOAD", "") == "Invalid argument"
    assert error_of(client, "RELOAD", "n" * 129) == "Namespace too long"
    client.close()


def test_kscan_lists_keys_by_prefix(db: redis.Redis) -> None:
    for key in ("user:1", "user:2", "user:10", "group:1"):
        db.execute_command("SET", key, "v")
    db.execute_command("DEL", "user:2")
    cursor, keys = db.execute_command("KSCAN", "user:")
    assert cursor == b"0"
    assert sorted(keys) == [b"user:1", b"user:10"]
    assert sorted(db.execute_command("KSCAN", "u")[1]) == [b"user:1", b"user:10"]
    assert db.execute_command("KSCAN", "group:1")[1] == [b"group:1"]
    assert error_of(db, "KSCAN", "nobody") == "No keys match"
    assert error_of(db, "KSCAN") == "Unexpected arguments"
    assert error_of(db, "KSCAN", "") == "Invalid argument"
    # Listed by crc32c(key) & 0xFFFFFF, like 0-db's hash buckets.
    ordered = sorted((b"user:1", b"user:10"), key=lambda key: crc32c_zdb(key) & 0xFFFFFF)
    assert keys == ordered


def test_scan_prints_lengths_and_timestamps_as_signed_32_bit(db: redis.Redis) -> None:
    db.execute_command("SET", "late", "v", "4000000000")
    assert db.execute_command("KEYTIME", "late") == 4000000000  # unsigned here
    assert db.execute_command("SCAN")[1] == [[b"late", 1, 4000000000 - 2**32]]
    assert db.execute_command("RSCAN")[1] == [[b"late", 1, 4000000000 - 2**32]]
    assert db.execute_command("HISTORY", "late")[1] == b"4000000000"
