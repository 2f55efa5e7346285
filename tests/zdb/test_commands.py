"""The key-value commands of a zgrid Zero-DB server, through real clients, reply by reply."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import (
    RawSocket,
    error_of,
    fresh_namespace,
    info_fields,
    raw,
    redis_cli,
    shared_server,
    unique,
)

server = shared_server("server")


@pytest.fixture
def db(server: ZdbProcess) -> Iterator[redis.Redis]:
    """A raw client in a namespace of its own on the module's server."""
    _, client = fresh_namespace(server)
    yield client
    client.close()


def offset_of(client: redis.Redis, name: str) -> int:
    """How many bytes the namespace's active data file holds (NSINFO, admin view)."""
    return int(info_fields(client.execute_command("NSINFO", name))["data_current_offset"])


# -- PING, TIME, INFO -------------------------------------------------------------------------


def test_ping_answers_pong_with_any_arguments(server: ZdbProcess) -> None:
    with RawSocket(server.port) as sock:
        assert sock.command("PING") == b"+PONG\r\n"
        assert sock.command("PING", "extra", "args") == b"+PONG\r\n"
    assert redis_cli(server.port, "PING") == "PONG"


def test_time_is_two_bulk_strings_seconds_and_microseconds(server: ZdbProcess) -> None:
    with RawSocket(server.port) as sock:
        before = time.time()
        reply = sock.call("TIME")
        after = time.time()
    assert isinstance(reply, list) and len(reply) == 2
    seconds, micros = reply
    assert isinstance(seconds, bytes) and isinstance(micros, bytes)
    assert seconds.isdigit() and micros.isdigit()
    assert not micros.startswith(b"0") or micros == b"0"  # not zero-padded
    assert 0 <= int(micros) < 1_000_000
    assert int(before) <= int(seconds) + int(micros) / 1e6 <= after + 0.001


def test_info_lists_every_field_in_order(server: ZdbProcess) -> None:
    client = raw(server.client())
    first = client.execute_command("INFO")
    assert isinstance(first, bytes)
    lines = first.decode().split("\n")
    assert lines[0] == "# server"
    assert first.endswith(b"\n")
    names = list(info_fields(first))
    assert names == [
        "server_name", "server_revision", "engine_revision", "instance_id", "boot_time",
        "uptime", "clients_lifetime", "sequential_key_size", "data_version", "index_version",
        "commands_executed", "commands_failed", "commands_unauthorized",
        "index_disk_read_failed", "index_disk_write_failed", "data_disk_read_failed",
        "data_disk_write_failed", "index_disk_read_bytes", "index_disk_read_mb",
        "index_disk_write_bytes", "index_disk_write_mb", "data_disk_read_bytes",
        "data_disk_read_mb", "data_disk_write_bytes", "data_disk_write_mb",
        "network_rx_bytes", "network_rx_mb", "network_tx_bytes", "network_tx_mb",
    ]  # fmt: skip
    for section in ("# server", "# clients", "# internals", "# stats"):
        assert section in lines
    fields = info_fields(first)
    assert fields["server_name"] == "0-db (zdb)"
    assert fields["sequential_key_size"] == "8"
    assert fields["data_version"] == "3"
    assert fields["index_version"] == "4"
    assert 1 <= int(fields["instance_id"]) <= 2**30
    assert abs(int(fields["boot_time"]) + int(fields["uptime"]) - time.time()) < 5
    assert (
        fields["network_rx_mb"].count(".") == 1 and len(fields["network_rx_mb"].split(".")[1]) == 2
    )
    # Counters move: INFO counts itself, an unknown command counts as failed.
    with pytest.raises(redis.ResponseError):
        client.execute_command("NOSUCHCOMMAND")
    second = info_fields(client.execute_command("INFO"))
    assert int(second["commands_executed"]) >= int(fields["commands_executed"]) + 1
    assert int(second["commands_failed"]) >= int(fields["commands_failed"]) + 1
    assert int(second["network_rx_bytes"]) > int(fields["network_rx_bytes"])
    for _ in range(2):
        with RawSocket(server.port) as other:
            assert other.command("PING") == b"+PONG\r\n"
    third = info_fields(client.execute_command("INFO"))
    assert int(third["clients_lifetime"]) == int(second["clients_lifetime"]) + 2
    assert second["instance_id"] == fields["instance_id"]
    client.close()


# -- SET / SETX / GET -------------------------------------------------------------------------


def test_set_returns_the_key_and_get_reads_it_back(db: redis.Redis) -> None:
    assert db.execute_command("SET", "alpha", "one") == b"alpha"
    assert db.execute_command("GET", "alpha") == b"one"
    assert db.execute_command("SETX", "beta", "two") == b"beta"
    assert db.execute_command("GET", "beta") == b"two"
    binary = bytes(range(256)) + b"\r\n\0"
    assert db.execute_command("SET", b"\x00\xffkey", binary) == b"\x00\xffkey"
    assert db.execute_command("GET", b"\x00\xffkey") == binary
    assert db.execute_command("SET", "empty", "") == b"empty"
    assert db.execute_command("GET", "empty") == b""
    assert db.execute_command("SET", "alpha", "uno") == b"alpha"
    assert db.execute_command("GET", "alpha") == b"uno"
    assert db.execute_command("GET", "missing") is None
    assert db.execute_command("DBSIZE") == 4


def test_set_of_an_identical_payload_returns_nil_and_writes_nothing(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    assert client.execute_command("SET", "k", "same") == b"k"
    stamp = client.execute_command("KEYTIME", "k")
    cursor = client.execute_command("KEYCUR", "k")
    size = offset_of(client, name)
    assert client.execute_command("SET", "k", "same") is None
    assert client.execute_command("SETX", "k", "same") is None
    assert offset_of(client, name) == size
    assert client.execute_command("KEYCUR", "k") == cursor
    assert client.execute_command("KEYTIME", "k") == stamp
    # Same length, other bytes: a real update.
    assert client.execute_command("SET", "k", "emas") == b"k"
    assert offset_of(client, name) > size
    assert client.execute_command("GET", "k") == b"emas"
    client.close()


def test_set_checks_key_length_and_arity(db: redis.Redis) -> None:
    assert db.execute_command("SET", b"k" * 255, "v") == b"k" * 255
    assert db.execute_command("GET", b"k" * 255) == b"v"
    assert error_of(db, "SET", b"k" * 256, "v") == "Key too large"
    assert error_of(db, "SETX", b"k" * 300, "v") == "Key too large"
    assert error_of(db, "SET", "", "v") == "Invalid argument, key needed"
    assert error_of(db, "SET", "k") == "Unexpected arguments"
    assert error_of(db, "SET") == "Unexpected arguments"
    assert error_of(db, "SET", "a", "b", "c", "d") == "Unexpected arguments"
    assert db.execute_command("DBSIZE") == 1


def test_set_with_a_timestamp_stores_it(db: redis.Redis) -> None:
    # Everybody is admin on a server without --admin: the 4-argument form is allowed.
    assert db.execute_command("SET", "old", "v", "1234567") == b"old"
    assert db.execute_command("KEYTIME", "old") == 1234567
    assert db.execute_command("SET", "junk", "v", "abc") == b"junk"
    assert db.execute_command("KEYTIME", "junk") == 0
    now = time.time()
    db.execute_command("SET", "now", "v")
    assert abs(db.execute_command("KEYTIME", "now") - now) <= 2


def test_get_errors(db: redis.Redis) -> None:
    assert error_of(db, "GET") == "Unexpected arguments"
    assert error_of(db, "GET", "a", "b") == "Unexpected arguments"
    assert error_of(db, "GET", "") == "Invalid argument"
    assert error_of(db, "GET", b"x" * 256) == "Invalid key"


def test_mget_mixes_hits_and_misses(db: redis.Redis) -> None:
    db.execute_command("SET", "a", "1")
    db.execute_command("SET", "c", "3")
    db.execute_command("SET", "e", "")
    assert db.execute_command("MGET", "a", "b", "c", "", "e", "a") == [
        b"1", None, b"3", None, b"", b"1",
    ]  # fmt: skip
    assert db.execute_command("MGET", "zzz") == [None]
    assert error_of(db, "MGET") == "Invalid arguments"
    assert error_of(db, "MGET", "a", b"k" * 256) == "Invalid key"


def test_del_removes_a_key(db: redis.Redis) -> None:
    db.execute_command("SET", "gone", "soon")
    db.execute_command("SET", "stays", "here")
    assert db.execute_command("DEL", "gone") == b"OK"
    assert db.execute_command("GET", "gone") is None
    assert db.execute_command("EXISTS", "gone") == 0
    assert error_of(db, "DEL", "gone") == "Key not found"
    assert error_of(db, "DEL", "never") == "Key not found"
    assert error_of(db, "DEL") == "Unexpected arguments"
    assert error_of(db, "DEL", "") == "Invalid argument"
    assert error_of(db, "DEL", b"k" * 256) == "Invalid key"
    assert db.execute_command("DBSIZE") == 1
    # A deleted key can be written again; the admin form takes a timestamp.
    assert db.execute_command("SET", "gone", "back") == b"gone"
    assert db.execute_command("DEL", "gone", "99") == b"OK"
    assert db.execute_command("GET", "stays") == b"here"


def test_exists_check_length_keytime(db: redis.Redis) -> None:
    db.execute_command("SET", "k", "12345")
    assert db.execute_command("EXISTS", "k") == 1
    assert db.execute_command("EXISTS", "nope") == 0
    assert db.execute_command("CHECK", "k") == 1
    assert db.execute_command("CHECK", "nope") is None
    assert db.execute_command("LENGTH", "k") == 5
    assert db.execute_command("LENGTH", "nope") is None
    assert abs(db.execute_command("KEYTIME", "k") - time.time()) <= 2
    assert db.execute_command("KEYTIME", "nope") is None
    for command in ("EXISTS", "CHECK", "LENGTH", "KEYTIME"):
        assert error_of(db, command) == "Unexpected arguments"
        assert error_of(db, command, "") == "Invalid argument"
        assert error_of(db, command, b"k" * 256) == "Invalid key"


def test_keycur_is_the_17_byte_cursor_of_the_live_entry(db: redis.Redis) -> None:
    db.execute_command("SET", "first", "abc")
    db.execute_command("SET", "k", "hello")
    cursor = db.execute_command("KEYCUR", "k")
    assert len(cursor) == 17
    keylen, fileid, length, offset, _crc = struct.unpack("<BIIII", cursor)
    assert (keylen, fileid, length) == (1, 0, 5)
    assert offset == 29 + 34 + len("first")  # after the index header and the first entry
    db.execute_command("SET", "k", "hello!")
    moved = db.execute_command("KEYCUR", "k")
    assert struct.unpack("<BIIII", moved)[2] == 6
    assert struct.unpack("<BIIII", moved)[3] > offset
    assert error_of(db, "KEYCUR", "nope") == "Key not found"
    assert error_of(db, "KEYCUR") == "Unexpected arguments"
    assert error_of(db, "KEYCUR", "") == "Invalid argument"


def test_dbsize_counts_live_keys_of_the_current_namespace(server: ZdbProcess) -> None:
    _, first = fresh_namespace(server)
    _, second = fresh_namespace(server)
    assert first.execute_command("DBSIZE") == 0
    for index in range(5):
        first.execute_command("SET", f"k{index}", "v")
    first.execute_command("SET", "k0", "v2")
    first.execute_command("DEL", "k1")
    assert first.execute_command("DBSIZE", "ignored") == 4
    assert second.execute_command("DBSIZE") == 0
    # Keys are namespace-local.
    assert second.execute_command("GET", "k0") is None
    first.close()
    second.close()


def test_a_second_real_client_sees_the_same_data(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "shared", "from redis-py")
    out = redis_cli(server.port, stdin=f"SELECT {name}\nGET shared\nSET cli written\n".encode())
    assert out.splitlines() == ["OK", "from redis-py", "cli"]
    assert client.execute_command("GET", "cli") == b"written"
    client.close()


# -- command names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        (b"ping", b"+PONG\r\n"),
        (b"PiNg", b"+PONG\r\n"),
        (b"PI", b"+PONG\r\n"),
        (b"P", b"+PONG\r\n"),
        (b"DB", b":1\r\n"),
        (b"dbsize", b":1\r\n"),
        (b"", b"-This is not a valid command\r\n"),
        (b"*", b"-This is not a valid command\r\n"),
        (b"PINGX", b"-Command not supported\r\n"),
        (b"GETS", b"-Command not supported\r\n"),
        (b"FOO", b"-Command not supported\r\n"),
        (b"GE\0", b"-Command not supported\r\n"),
    ],
)
def test_command_names_match_by_prefix(server: ZdbProcess, name: bytes, reply: bytes) -> None:
    ns, client = fresh_namespace(server)
    client.execute_command("SET", "k", "v")
    with RawSocket(server.port) as sock:
        assert sock.command("SELECT", ns) == b"+OK\r\n"
        assert sock.command(name) == reply
        assert sock.command("PING") == b"+PONG\r\n"  # the connection stays usable
    client.close()


def test_prefixes_pick_the_first_command_of_the_table(server: ZdbProcess) -> None:
    ns, client = fresh_namespace(server)
    with RawSocket(server.port) as sock:
        sock.command("SELECT", ns)
        assert sock.command("S", "k", "v") == b"$1\r\nk\r\n"  # SET
        assert sock.command("SE", "k2", "w") == b"$2\r\nk2\r\n"  # SET
        assert sock.command("g", "k") == b"$1\r\nv\r\n"  # GET
        assert sock.command("MG", "k", "k2") == b"*2\r\n$1\r\nv\r\n$1\r\nw\r\n"  # MGET
        assert sock.command("E", "k") == b":1\r\n"  # EXISTS
        assert sock.command("C", "k") == b":1\r\n"  # CHECK
        assert sock.command("L", "k") == b":1\r\n"  # LENGTH
        assert sock.command("DE", "k2") == b"+OK\r\n"  # DEL
        assert sock.command("D") == b"-Missing arguments\r\n"  # DATA
        assert sock.command("I") == b"-Missing arguments\r\n"  # INDEX
        assert sock.command("INF").startswith(b"$")  # INFO
        assert sock.command("T").startswith(b"*2\r\n")  # TIME
        assert sock.command("A", "x") == b"-Authentication disabled\r\n"  # AUTH
        assert sock.command("W") == b"-Invalid arguments\r\n"  # WAIT
        assert sock.command("HI", "k").startswith(b"*3\r\n")  # HISTORY
        assert sock.command("KEY", "k").startswith(b"$17\r\n")  # KEYCUR
        assert sock.command("SEL", ns) == b"+OK\r\n"  # SELECT
        assert sock.command("GET\0trailing", "k") == b"$1\r\nv\r\n"  # NUL ends the name
        assert sock.command("setx", "k", "v") == b"$-1\r\n"  # SETX, identical value
    client.close()


# -- sequential mode --------------------------------------------------------------------------


def seq_id(number: int) -> bytes:
    return struct.pack("<Q", number)


def test_seq_mode_allocates_little_endian_ids(zdb_factory: Callable[..., ZdbProcess]) -> None:
    seq = zdb_factory("--mode", "seq")
    client = raw(seq.client())
    assert [client.execute_command("SET", "", f"v{n}") for n in range(3)] == [
        seq_id(0), seq_id(1), seq_id(2),
    ]  # fmt: skip
    assert client.execute_command("GET", seq_id(1)) == b"v1"
    # An update keeps its id, and consumes the next one for the old version.
    assert client.execute_command("SET", seq_id(0), "new0") == seq_id(0)
    assert client.execute_command("GET", seq_id(0)) == b"new0"
    assert client.execute_command("SET", "", "v4") == seq_id(4)
    assert client.execute_command("GET", seq_id(3)) is None
    assert client.execute_command("EXISTS", seq_id(3)) == 0
    # An identical payload writes nothing and consumes nothing.
    assert client.execute_command("SET", seq_id(4), "v4") is None
    assert client.execute_command("SET", "", "v5") == seq_id(5)
    # Only existing ids may be written.
    for key in (seq_id(99), seq_id(3), b"short", b"x" * 9):
        assert error_of(client, "SET", key, "v") == "Invalid key, only update authorized"
    assert client.execute_command("GET", b"short") is None
    assert client.execute_command("DEL", seq_id(1)) == b"OK"
    assert client.execute_command("GET", seq_id(1)) is None
    assert error_of(client, "SET", seq_id(1), "again") == "Invalid key, only update authorized"
    assert error_of(client, "DEL", seq_id(1)) == "Key not found"
    assert client.execute_command("DBSIZE") == 4  # ids 0, 2, 4, 5
    assert client.execute_command("LENGTH", seq_id(0)) == 4
    assert client.execute_command("CHECK", seq_id(2)) == 1
    info = info_fields(client.execute_command("NSINFO", "default"))
    assert info["mode"] == "sequential"
    assert info["next_internal_id"] == "0x600000000000000"  # 6, byte-swapped
    assert error_of(client, "KSCAN", "x") == "Index running mode doesn't support this feature"
    assert (
        error_of(client, "NSSET", "default", "mode", "user")
        == "This server instance is configured to use a single runtime mode"
    )
    client.execute_command("NSNEW", "other")
    client.execute_command("SELECT", "other")
    assert client.execute_command("SET", "", "first") == seq_id(0)  # new namespaces are seq too
    client.close()


def test_mixed_mode_switches_a_fresh_namespace_to_seq(server: ZdbProcess) -> None:
    name = unique()
    client = raw(server.client())
    client.execute_command("NSNEW", name)
    assert (
        error_of(client, "NSSET", name, "mode", "sequential")
        == "Invalid property value (expected: user, seq)"
    )
    assert client.execute_command("NSSET", name, "mode", "seq") == b"OK"
    client.execute_command("SELECT", name)
    assert client.execute_command("SET", "", "a") == seq_id(0)
    assert client.execute_command("SET", "", "b") == seq_id(1)
    assert info_fields(client.execute_command("NSINFO", name))["mode"] == "sequential"
    assert error_of(client, "NSSET", name, "mode", "user") == "Cannot change mode of used namespace"
    # A used user-mode namespace cannot switch either.
    used, other = fresh_namespace(server)
    other.execute_command("SET", "k", "v")
    assert error_of(other, "NSSET", used, "mode", "seq") == "Cannot change mode of used namespace"
    assert other.execute_command("GET", "k") == b"v"
    client.close()
    other.close()


# -- restart ----------------------------------------------------------------------------------


def test_everything_reads_back_after_a_restart(zdb_factory: Callable[..., ZdbProcess]) -> None:
    node = zdb_factory()
    client = raw(node.client())
    for index in range(50):
        client.execute_command("SET", f"key{index}", f"value{index}" * (index + 1))
    client.execute_command("SET", "key7", "overwritten")
    client.execute_command("DEL", "key8")
    client.execute_command("NSNEW", "vault")
    client.execute_command("NSSET", "vault", "password", "s3cret")
    client.execute_command("NSSET", "vault", "public", "0")
    client.execute_command("NSSET", "vault", "worm", "1")
    client.execute_command("NSSET", "vault", "maxsize", "4096")
    client.execute_command("NSNEW", "numbers")
    client.execute_command("NSSET", "numbers", "mode", "seq")
    client.execute_command("NSNEW", "held")
    client.execute_command("NSSET", "held", "lock", "1")
    client.execute_command("NSSET", "default", "freeze", "1")
    client.execute_command("SELECT", "vault", "s3cret")
    client.execute_command("SET", "doc", "kept")
    client.execute_command("SELECT", "numbers")
    client.execute_command("SET", "", "zero")
    client.execute_command("SET", "", "one")
    before = {name: client.execute_command("NSINFO", name) for name in ("vault", "numbers")}
    keycur = client.execute_command("KEYCUR", seq_id(1))
    client.close()

    node.restart()
    client = raw(node.client())
    assert client.execute_command("DBSIZE") == 49  # default is not frozen any more
    for index in range(50):
        expected = None if index == 8 else f"value{index}".encode() * (index + 1)
        if index == 7:
            expected = b"overwritten"
        assert client.execute_command("GET", f"key{index}") == expected
    assert client.execute_command("NSLIST")[0] == b"default"
    assert set(client.execute_command("NSLIST")) == {b"default", b"vault", b"numbers", b"held"}
    assert error_of(client, "SELECT", "vault") == "Namespace protected and private"
    client.execute_command("SELECT", "vault", "s3cret")
    assert client.execute_command("GET", "doc") == b"kept"
    assert error_of(client, "SET", "doc", "new") == "Namespace is protected by worm mode"
    vault = info_fields(client.execute_command("NSINFO", "vault"))
    assert (vault["public"], vault["worm"], vault["password"]) == ("no", "yes", "yes")
    assert vault["data_limits_bytes"] == "4096"
    assert vault["entries"] == info_fields(before["vault"])["entries"] == "1"
    client.execute_command("SELECT", "numbers")
    assert client.execute_command("GET", seq_id(0)) == b"zero"
    assert client.execute_command("KEYCUR", seq_id(1)) == keycur
    assert client.execute_command("SET", "", "two") == seq_id(2)
    assert info_fields(client.execute_command("NSINFO", "numbers"))["mode"] == "sequential"
    assert info_fields(client.execute_command("NSINFO", "held"))["locked"] == "no"
    client.execute_command("SELECT", "held")
    assert client.execute_command("SET", "k", "v") == b"k"  # the lock did not survive
    client.close()
