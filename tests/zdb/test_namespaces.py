"""Namespaces: NSNEW, NSDEL, NSLIST, NSINFO, NSSET (every property), NSJUMP, SELECT, FLUSH."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import (
    RawSocket,
    error_of,
    fresh_namespace,
    info_fields,
    raw,
    secure_hash,
    shared_server,
    unique,
)

server = shared_server("server")

READ_ONLY = "Namespace is in read-only mode"
LOCKED = "Namespace is temporarily locked (read-only)"
FROZEN = "Namespace is temporarily frozen (read-write disabled)"


def admin(server: ZdbProcess) -> redis.Redis:
    """A raw client on ``default`` (everybody is admin on this server)."""
    return raw(server.client())


# -- NSNEW, NSLIST, NSDEL ---------------------------------------------------------------------


def test_nsnew_creates_a_namespace_with_defaults(server: ZdbProcess) -> None:
    client = admin(server)
    name = unique()
    assert client.execute_command("NSNEW", name) == b"OK"
    assert (server.index / name / "zdb-namespace").is_file()
    assert (server.index / name / "i0").is_file()
    assert (server.data / name / "d0").is_file()
    info = info_fields(client.execute_command("NSINFO", name))
    assert info["name"] == name
    assert (info["public"], info["worm"], info["locked"], info["password"]) == (
        "yes", "no", "no", "no",
    )  # fmt: skip
    assert (info["entries"], info["data_size_bytes"], info["data_limits_bytes"]) == ("0", "0", "0")
    assert info["mode"] == "userkey"
    assert name.encode() in client.execute_command("NSLIST")
    assert error_of(client, "NSNEW", name) == "This namespace is not available"
    client.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (b"default", "This name is not allowed"),
        (b".", "This name is not allowed"),
        (b"..", "This name is not allowed"),
        (b"a/b", "This name is not allowed"),
        (b"n" * 129, "Namespace too long"),
        (b"", "Invalid argument"),
    ],
)
def test_nsnew_refuses_bad_names(server: ZdbProcess, name: bytes, message: str) -> None:
    client = admin(server)
    assert error_of(client, "NSNEW", name) == message
    client.close()


def test_nsnew_arity_and_longest_name(server: ZdbProcess) -> None:
    client = admin(server)
    assert error_of(client, "NSNEW") == "Unexpected arguments"
    assert error_of(client, "NSNEW", "a", "b") == "Unexpected arguments"
    longest = "L" * 127 + unique()[-1]
    assert client.execute_command("NSNEW", longest) == b"OK"
    assert client.execute_command("SELECT", longest) == b"OK"
    client.close()


def test_nslist_starts_with_default_and_follows_creation(server: ZdbProcess) -> None:
    client = admin(server)
    names = [unique() for _ in range(3)]
    for name in names:
        client.execute_command("NSNEW", name)
    listed = client.execute_command("NSLIST", "ignored")
    assert listed[0] == b"default"
    positions = [listed.index(name.encode()) for name in names]
    assert positions == sorted(positions)
    client.execute_command("NSDEL", names[1])
    assert names[1].encode() not in client.execute_command("NSLIST")
    client.close()


def test_nsdel_detaches_clients_and_removes_the_files(server: ZdbProcess) -> None:
    name, user = fresh_namespace(server)
    user.execute_command("SET", "k", "v")
    client = admin(server)
    assert error_of(client, "NSDEL", "default") == "Cannot remove default namespace"
    assert error_of(client, "NSDEL", unique()) == "This namespace doesn't exists"
    assert error_of(client, "NSDEL") == "Unexpected arguments"
    assert error_of(client, "NSDEL", "n" * 129) == "Namespace too long"
    with RawSocket(server.port) as inside:
        assert inside.command("SELECT", name) == b"+OK\r\n"
        assert (
            inside.command("NSDEL", name) == b"-Cannot remove namespace you're currently using.\r\n"
        )
        assert client.execute_command("NSDEL", name) == b"OK"
        assert inside.command("PING") == (
            b"-Your active namespace is not available anymore (probably removed).\r\n"
        )
        inside.expect_closed()
    assert not (server.index / name).exists()
    assert not (server.data / name).exists()
    assert error_of(client, "SELECT", name) == "Namespace not found"
    assert error_of(client, "NSINFO", name) == "Namespace not found"
    # The name can be used again, empty.
    assert client.execute_command("NSNEW", name) == b"OK"
    client.execute_command("SELECT", name)
    assert client.execute_command("DBSIZE") == 0
    client.close()
    user.close()


# -- NSINFO -----------------------------------------------------------------------------------


def test_nsinfo_fields_and_counters(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "ab", "12345")
    client.execute_command("SET", "cde", "1234567890")
    text = client.execute_command("NSINFO", name)
    assert text.startswith(b"# namespace\n") and text.endswith(b"\n")
    info = info_fields(text)
    assert list(info)[:19] == [
        "name", "entries", "public", "worm", "locked", "password", "data_size_bytes",
        "data_size_mb", "data_limits_bytes", "index_size_bytes", "index_size_kb",
        "next_internal_id", "mode", "stats_index_io_errors", "stats_index_io_error_last",
        "stats_index_faults", "stats_data_io_errors", "stats_data_io_error_last",
        "stats_data_faults",
    ]  # fmt: skip
    assert info["entries"] == "2"
    assert info["data_size_bytes"] == "15"
    assert info["data_size_mb"] == "0.00"
    assert info["index_size_bytes"] == str(64 + 2 + 64 + 3)
    assert info["next_internal_id"] == "0x200000000000000"
    assert "space_available" not in info
    # Admin view: the paths and the active file.
    assert info["data_path"] == f"{server.data}/{name}"
    assert info["index_active"] == f"{server.index}/{name}/i0"
    assert info["data_current_id"] == "0"
    assert int(info["data_current_offset"]) == 28 + 18 + 2 + 5 + 18 + 3 + 10
    assert "password_raw" not in info
    assert error_of(client, "NSINFO") == "Unexpected arguments"
    assert error_of(client, "NSINFO", "nope") == "Namespace not found"
    assert error_of(client, "NSINFO", "n" * 129) == "Namespace too long"
    client.close()


# -- NSSET: every property --------------------------------------------------------------------


def test_nsset_password_on_a_public_namespace_gives_read_only_access(server: ZdbProcess) -> None:
    name, owner = fresh_namespace(server, ("password", "pw"))
    owner.execute_command("SET", "k", "v")
    visitor = raw(server.client())
    assert visitor.execute_command("SELECT", name) == b"OK"
    assert visitor.execute_command("GET", "k") == b"v"
    assert error_of(visitor, "SET", "k", "x") == READ_ONLY
    assert error_of(visitor, "SET", "", "x") == READ_ONLY
    assert error_of(visitor, "DEL", "k") == READ_ONLY
    assert visitor.execute_command("SELECT", name, "pw") == b"OK"
    assert visitor.execute_command("SET", "k", "x") == b"k"
    assert error_of(visitor, "SELECT", name, "wrong") == "Access denied"
    assert error_of(visitor, "SELECT", name, "pw2") == "Access denied"
    assert error_of(visitor, "SELECT", name, "p") == "Access denied"
    assert error_of(visitor, "SELECT", name, "a", "b", "c") == "Too many arguments"
    assert error_of(visitor, "SELECT", name, b"p" * 256) == "Password too long"
    assert info_fields(visitor.execute_command("NSINFO", name))["password"] == "yes"
    # "*" clears the password: writable without one.
    assert owner.execute_command("NSSET", name, "password", "*") == b"OK"
    assert visitor.execute_command("SELECT", name) == b"OK"
    assert visitor.execute_command("SET", "k", "y") == b"k"
    assert info_fields(visitor.execute_command("NSINFO", name))["password"] == "no"
    owner.close()
    visitor.close()


def test_nsset_public_zero_makes_a_namespace_private(server: ZdbProcess) -> None:
    name, owner = fresh_namespace(server, ("password", "pw"), ("public", "0"))
    owner.execute_command("SET", "k", "v")
    visitor = raw(server.client())
    assert error_of(visitor, "SELECT", name) == "Namespace protected and private"
    assert visitor.execute_command("GET", "k") is None  # still on default
    assert info_fields(visitor.execute_command("NSINFO", name))["public"] == "no"
    assert visitor.execute_command("SELECT", name, "pw") == b"OK"
    assert visitor.execute_command("GET", "k") == b"v"
    owner.execute_command("NSSET", name, "public", "1")
    other = raw(server.client())
    assert other.execute_command("SELECT", name) == b"OK"
    assert error_of(other, "SET", "k", "w") == READ_ONLY
    # A private namespace without password is selectable (the password guards it).
    open_name, _ = fresh_namespace(server, ("public", "0"))
    assert other.execute_command("SELECT", open_name) == b"OK"
    for client in (owner, visitor, other):
        client.close()


def test_nsset_worm_forbids_overwrite_and_delete(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "k", "v")
    assert client.execute_command("NSSET", name, "worm", "1") == b"OK"
    assert info_fields(client.execute_command("NSINFO", name))["worm"] == "yes"
    assert error_of(client, "SET", "k", "other") == "Namespace is protected by worm mode"
    assert error_of(client, "SET", "k", "v") == "Namespace is protected by worm mode"
    assert client.execute_command("SET", "new", "ok") == b"new"
    assert error_of(client, "DEL", "k") == "Cannot delete a key when namespace is in worm mode"
    assert error_of(client, "DEL", "nope") == "Key not found"
    assert client.execute_command("GET", "k") == b"v"
    assert client.execute_command("NSSET", name, "worm", "0") == b"OK"
    assert client.execute_command("SET", "k", "other") == b"k"
    assert client.execute_command("DEL", "k") == b"OK"
    client.close()


def test_nsset_maxsize_limits_the_payload_bytes(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    assert client.execute_command("NSSET", name, "maxsize", "10") == b"OK"
    info = info_fields(client.execute_command("NSINFO", name))
    assert (info["data_limits_bytes"], info["space_available"]) == ("10", "10")
    assert client.execute_command("SET", "a", "123456") == b"a"
    assert error_of(client, "SET", "b", "12345") == "No space left on this namespace"
    assert client.execute_command("SET", "b", "1234") == b"b"
    assert error_of(client, "SET", "c", "1") == "No space left on this namespace"
    # An update only needs room for the difference; a DEL frees room.
    assert client.execute_command("SET", "a", "654321") == b"a"
    assert error_of(client, "SET", "a", "6543210") == "No space left on this namespace"
    assert client.execute_command("DEL", "b") == b"OK"
    assert client.execute_command("SET", "c", "1234") == b"c"
    assert info_fields(client.execute_command("NSINFO", name))["space_available"] == "0"
    assert client.execute_command("NSSET", name, "maxsize", "0") == b"OK"
    assert client.execute_command("SET", "d", "x" * 100) == b"d"
    assert "space_available" not in info_fields(client.execute_command("NSINFO", name))
    client.close()


def test_nsset_lock_makes_a_namespace_read_only(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "k", "v")
    assert client.execute_command("NSSET", name, "lock", "1") == b"OK"
    assert info_fields(client.execute_command("NSINFO", name))["locked"] == "yes"
    assert error_of(client, "SET", "k", "w") == LOCKED
    assert error_of(client, "SET", "new", "w") == LOCKED
    assert error_of(client, "DEL", "k") == LOCKED
    assert client.execute_command("GET", "k") == b"v"
    assert client.execute_command("EXISTS", "k") == 1
    assert client.execute_command("SCAN")[1][0][0] == b"k"
    assert client.execute_command("NSSET", name, "lock", "0") == b"OK"
    assert client.execute_command("SET", "k", "w") == b"k"
    assert client.execute_command("NSSET", name, "lock", "yes") == b"OK"  # not "1": unlocked
    assert client.execute_command("SET", "k", "x") == b"k"
    # Allowed on default too.
    assert client.execute_command("NSSET", "default", "lock", "1") == b"OK"
    other = raw(server.client())
    assert error_of(other, "SET", "k", "v") == LOCKED
    assert client.execute_command("NSSET", "default", "lock", "0") == b"OK"
    assert other.execute_command("SET", "k", "v") == b"k"
    client.close()
    other.close()


def test_nsset_freeze_stops_reads_and_writes(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "k", "v")
    assert client.execute_command("NSSET", name, "freeze", "1") == b"OK"
    for command in (
        ("GET", "k"), ("MGET", "k"), ("EXISTS", "k"), ("CHECK", "k"), ("LENGTH", "k"),
        ("KEYTIME", "k"), ("KEYCUR", "k"), ("SCAN",), ("RSCAN",), ("HISTORY", "k"),
        ("SET", "k", "w"), ("DEL", "k"),
    ):  # fmt: skip
        assert error_of(client, *command) == FROZEN, command
    assert client.execute_command("DBSIZE") == 1
    assert info_fields(client.execute_command("NSINFO", name))["locked"] == "yes"
    assert client.execute_command("SELECT", name) == b"OK"
    # lock 0 also thaws (one state); freeze 0 also unlocks.
    assert client.execute_command("NSSET", name, "lock", "0") == b"OK"
    assert client.execute_command("GET", "k") == b"v"
    client.execute_command("NSSET", name, "lock", "1")
    assert client.execute_command("NSSET", name, "freeze", "0") == b"OK"
    assert client.execute_command("SET", "k", "w") == b"k"
    client.close()


def test_nsset_errors(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    for prop in ("password", "public", "worm", "maxsize"):
        assert error_of(client, "NSSET", "default", prop, "1") == "Cannot update default namespace"
    assert error_of(client, "NSSET", name, "colour", "blue") == "Invalid property"
    assert error_of(client, "NSSET", name, "PUBLIC", "0") == "Invalid property"
    assert error_of(client, "NSSET", "nope", "public", "0") == "Namespace not found"
    assert error_of(client, "NSSET", name, "public") == "Unexpected arguments"
    assert error_of(client, "NSSET", name, "public", "") == "Invalid argument"
    assert error_of(client, "NSSET", name, "password", "p" * 64) == "Argument too long"
    assert error_of(client, "NSSET", name, "p" * 257, "1") == "Argument too long"
    assert error_of(client, "NSSET", "n" * 129, "public", "0") == "Namespace too long"
    assert client.execute_command("NSSET", name, "password", "p" * 63) == b"OK"
    client.close()


# -- NSJUMP -----------------------------------------------------------------------------------


def test_nsjump_starts_new_files_and_keeps_everything(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server)
    client.execute_command("SET", "a", "1")
    assert client.execute_command("NSJUMP", "ignored") == b"OK"
    client.execute_command("SET", "b", "2")
    client.execute_command("NSSET", name, "lock", "1")
    assert client.execute_command("NSJUMP") == b"OK"  # even when locked
    info = info_fields(client.execute_command("NSINFO", name))
    assert info["data_current_id"] == "2"
    assert info["index_active"].endswith(f"/{name}/i2")
    assert (server.data / name / "d2").is_file() and (server.index / name / "i2").is_file()
    assert client.execute_command("MGET", "a", "b") == [b"1", b"2"]
    client.execute_command("NSSET", name, "lock", "0")
    client.execute_command("SET", "a", "3")
    assert client.execute_command("KEYCUR", "a")[1:5] == b"\x02\x00\x00\x00"  # in i2
    client.close()


# -- SELECT -----------------------------------------------------------------------------------


def test_select_errors(server: ZdbProcess) -> None:
    client = admin(server)
    assert error_of(client, "SELECT") == "Invalid argument"
    assert error_of(client, "SELECT", "nope") == "Namespace not found"
    assert error_of(client, "SELECT", "") == "Namespace not found"
    assert error_of(client, "SELECT", "n" * 129) == "Namespace too long"
    name, _ = fresh_namespace(server)
    # Without a password extra arguments are ignored.
    assert client.execute_command("SELECT", name, "whatever", "a", "b") == b"OK"
    assert client.execute_command("SELECT", "default") == b"OK"
    client.close()


def test_select_secure_with_a_challenge(server: ZdbProcess) -> None:
    name, _ = fresh_namespace(server, ("password", "hunter2"), ("public", "0"))
    client = raw(server.client())
    assert (
        error_of(client, "SELECT", name, "SECURE", "0" * 40)
        == "No CHALLENGE requested, secure authentication not available"
    )
    nonce = client.execute_command("AUTH", "SECURE", "CHALLENGE")
    assert len(nonce) == 16 and all(c in b"0123456789abcdef" for c in nonce)
    good = secure_hash(nonce, "hunter2")
    assert error_of(client, "SELECT", name, "SECURE", "abc") == "Invalid hash length"
    assert error_of(client, "SELECT", name, "SECURE", good.upper()) == "Access denied"
    assert error_of(client, "SELECT", name, "SECURE", secure_hash(nonce, "x")) == "Access denied"
    assert error_of(client, "SELECT", name, "PLAIN", good) == "Only SECURE extra method supported"
    assert client.execute_command("SELECT", name, "SECURE", good) == b"OK"
    assert client.execute_command("SET", "k", "v") == b"k"  # writable
    # SELECT does not use the nonce up.
    assert client.execute_command("SELECT", "default") == b"OK"
    assert client.execute_command("SELECT", name, "sec", good) == b"OK"
    # A new challenge replaces the old nonce.
    client.execute_command("AUTH", "SECURE", "CHALLENGE")
    assert error_of(client, "SELECT", name, "SECURE", good) == "Access denied"
    client.close()


# -- FLUSH ------------------------------------------------------------------------------------


def test_flush_is_denied_for_public_or_passwordless_namespaces(server: ZdbProcess) -> None:
    client = admin(server)
    assert error_of(client, "FLUSH") == "Flushing public namespace denied"
    cases = [(), (("password", "pw"),), (("public", "0"),)]
    for settings in cases:
        _, user = fresh_namespace(server, *settings)
        user.execute_command("SET", "k", "v")
        assert error_of(user, "FLUSH") == "Flushing public namespace denied", settings
        assert user.execute_command("GET", "k") == b"v"
        user.close()
    client.close()


def test_flush_empties_a_private_protected_namespace(server: ZdbProcess) -> None:
    name, client = fresh_namespace(server, ("password", "pw"), ("public", "0"))
    for index in range(10):
        client.execute_command("SET", f"k{index}", "v" * 100)
    client.execute_command("NSJUMP")
    client.execute_command("SET", "late", "v")
    bystander = raw(server.client())
    bystander.execute_command("SELECT", name, "pw")
    assert client.execute_command("FLUSH") == b"OK"
    assert client.execute_command("DBSIZE") == 0
    assert client.execute_command("GET", "k1") is None
    assert bystander.execute_command("GET", "late") is None
    assert error_of(client, "SCAN") == "No more data"
    info = info_fields(client.execute_command("NSINFO", name))
    assert (info["entries"], info["data_size_bytes"], info["data_current_id"]) == ("0", "0", "0")
    assert info["password"] == "yes" and info["public"] == "no"  # the settings stay
    assert sorted(path.name for path in (server.data / name).iterdir()) == ["d0"]
    assert (server.data / name / "d0").stat().st_size == 28
    # New writes work, and survive a RELOAD (nothing old comes back).
    assert client.execute_command("SET", "fresh", "v") == b"fresh"
    client.execute_command("RELOAD", name)
    assert client.execute_command("DBSIZE") == 1
    assert client.execute_command("GET", "k1") is None
    client.close()
    bystander.close()


# -- which refusal comes first ----------------------------------------------------------------


def test_set_and_del_check_in_0db_order(server: ZdbProcess) -> None:
    name, owner = fresh_namespace(server, ("password", "pw"))
    owner.execute_command("SET", "k", "v")
    owner.execute_command("NSSET", name, "worm", "1")
    owner.execute_command("NSSET", name, "maxsize", "1")
    reader = raw(server.client())
    reader.execute_command("SELECT", name)  # public, no password given: read-only
    # worm before maxsize; maxsize before the missing user key.
    assert error_of(owner, "SET", "k", "vv") == "Namespace is protected by worm mode"
    assert error_of(owner, "SET", "new", "vv") == "No space left on this namespace"
    assert error_of(owner, "SET", "", "vv") == "No space left on this namespace"
    owner.execute_command("NSSET", name, "maxsize", "0")
    assert error_of(owner, "SET", "", "vv") == "Invalid argument, key needed"
    # DEL: not found before worm.
    assert error_of(owner, "DEL", "nope") == "Key not found"
    owner.execute_command("NSSET", name, "lock", "1")
    assert error_of(owner, "SET", "k", "vv") == LOCKED  # locked before worm
    assert error_of(owner, "DEL", "nope") == LOCKED  # locked before not found
    assert error_of(reader, "SET", "k", "vv") == READ_ONLY  # read-only before locked
    owner.execute_command("NSSET", name, "freeze", "1")
    assert error_of(owner, "SET", "", "vv") == FROZEN  # frozen before locked/worm/key
    assert error_of(reader, "DEL", "k") == READ_ONLY  # read-only before frozen
    # The key length and the arity come first of all.
    assert error_of(reader, "SET", b"k" * 256, "v") == "Key too large"
    assert error_of(reader, "DEL", b"k" * 256) == "Invalid key"
    assert error_of(reader, "SET", "k") == "Unexpected arguments"
    assert error_of(owner, "GET", b"k" * 256) == "Invalid key"  # before frozen
    owner.execute_command("NSSET", name, "freeze", "0")
    assert owner.execute_command("GET", "k") == b"v"
    owner.close()
    reader.close()


def test_attached_clients_keep_their_rights_when_settings_change(server: ZdbProcess) -> None:
    name, inside = fresh_namespace(server)
    inside.execute_command("SET", "k", "v")
    admin_client = admin(server)
    admin_client.execute_command("NSSET", name, "password", "late")
    admin_client.execute_command("NSSET", name, "public", "0")
    # Already selected, still writable; a newcomer needs the password.
    assert inside.execute_command("SET", "k", "w") == b"k"
    assert error_of(admin_client, "SELECT", name) == "Namespace protected and private"
    # FLUSH now works for the client inside (private and password-protected).
    assert inside.execute_command("FLUSH") == b"OK"
    assert inside.execute_command("DBSIZE") == 0
    inside.close()
    admin_client.close()


def test_maxsize_flag_limits_default(zdb_factory: Callable[..., ZdbProcess]) -> None:
    node = zdb_factory("--maxsize", "10")
    client = raw(node.client())
    assert info_fields(client.execute_command("NSINFO", "default"))["data_limits_bytes"] == "10"
    assert client.execute_command("SET", "a", "1234567890") == b"a"
    assert error_of(client, "SET", "b", "1") == "No space left on this namespace"
    client.execute_command("NSNEW", "other")
    client.execute_command("SELECT", "other")
    assert client.execute_command("SET", "b", "x" * 100) == b"b"
    client.close()
