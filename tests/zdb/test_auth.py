"""Admin rights: AUTH, AUTH SECURE, admin-only commands, --protect, STOP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import redis

from tests.processes import ZGRID
from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import (
    RawSocket,
    error_of,
    info_fields,
    raw,
    redis_cli,
    secure_hash,
    shared_server,
    unique,
)

PASSWORD = "adm1n-pass"
server = shared_server("server", "--admin", PASSWORD)


def user(server: ZdbProcess) -> redis.Redis:
    return raw(server.client())


def logged_in(server: ZdbProcess) -> redis.Redis:
    client = user(server)
    assert client.execute_command("AUTH", PASSWORD) == b"OK"
    return client


def test_auth_with_the_admin_password(server: ZdbProcess) -> None:
    client = user(server)
    assert error_of(client, "NSNEW", unique()) == "Permission denied"
    assert error_of(client, "AUTH", "wrong") == "Access denied"
    assert error_of(client, "AUTH", PASSWORD[:-1]) == "Access denied"
    assert error_of(client, "AUTH", PASSWORD + "x") == "Access denied"
    assert error_of(client, "AUTH", PASSWORD.upper()) == "Access denied"
    assert error_of(client, "AUTH", "") == "Invalid argument"
    assert error_of(client, "AUTH", "p" * 129) == "Password too long"
    assert error_of(client, "AUTH") == "Unexpected arguments"
    assert error_of(client, "AUTH", "a", "b", "c") == "Unexpected arguments"
    assert client.execute_command("AUTH", PASSWORD) == b"OK"
    assert client.execute_command("NSNEW", unique()) == b"OK"
    # A failed attempt later does not take the rights away.
    assert error_of(client, "AUTH", "wrong") == "Access denied"
    assert client.execute_command("NSNEW", unique()) == b"OK"
    # The bytes after a NUL are not part of the password.
    other = user(server)
    assert other.execute_command("AUTH", PASSWORD.encode() + b"\0junk") == b"OK"
    client.close()
    other.close()


def test_auth_secure_challenge_and_hash(server: ZdbProcess) -> None:
    client = user(server)
    assert (
        error_of(client, "AUTH", "SECURE", "0" * 40)
        == "No CHALLENGE requested, secure authentication not available"
    )
    nonce = client.execute_command("AUTH", "SECURE", "CHALLENGE")
    assert len(nonce) == 16 and all(c in b"0123456789abcdef" for c in nonce)
    assert client.execute_command("AUTH", "sec", "c") != nonce  # a new nonce each time
    nonce = client.execute_command("AUTH", "S", "challenge")
    # A hash of the wrong length keeps the nonce; a wrong hash uses it up.
    assert error_of(client, "AUTH", "SECURE", "abc") == "Invalid hash length"
    assert error_of(client, "AUTH", "SECURE", secure_hash(nonce, PASSWORD).upper()) == (
        "Access denied"
    )
    assert error_of(client, "AUTH", "SECURE", secure_hash(nonce, PASSWORD)) == (
        "No CHALLENGE requested, secure authentication not available"
    )
    assert error_of(client, "NSNEW", unique()) == "Permission denied"
    nonce = client.execute_command("AUTH", "SECURE", "CHALLENGE")
    answer = secure_hash(nonce, PASSWORD)
    assert client.execute_command("AUTH", "SECURE", answer) == b"OK"
    assert client.execute_command("NSNEW", unique()) == b"OK"
    # Single use: the same answer again has no challenge behind it.
    assert error_of(client, "AUTH", "SECURE", answer) == (
        "No CHALLENGE requested, secure authentication not available"
    )
    assert error_of(client, "AUTH", "PLAIN", "CHALLENGE") == "Only SECURE extra method supported"
    assert error_of(client, "AUTH", "SECUREX", "CHALLENGE") == "Only SECURE extra method supported"
    assert error_of(client, "AUTH", "", "CHALLENGE") == "Invalid argument"
    assert error_of(client, "AUTH", "SECURE", "") == "Invalid argument"
    # A hash made for another nonce is refused.
    stranger = user(server)
    stranger_nonce = stranger.execute_command("AUTH", "SECURE", "CHALLENGE")
    client.execute_command("AUTH", "SECURE", "CHALLENGE")
    assert error_of(client, "AUTH", "SECURE", secure_hash(stranger_nonce, PASSWORD)) == (
        "Access denied"
    )
    client.close()
    stranger.close()


ADMIN_ONLY = [
    ("NSNEW", "x"),
    ("NSDEL", "x"),
    ("NSSET", "x", "public", "0"),
    ("NSJUMP",),
    ("RELOAD", "default"),
    ("HOOKS",),
    ("INDEX", "DIRTY"),
    ("INDEX",),
    ("DATA", "RAW", "0", "28"),
    ("DATA",),
    ("MIRROR",),
    ("MASTER",),
    ("SET", "k", "v", "12345"),
    ("SETX", "k", "v", "12345"),
    ("DEL", "k", "12345"),
]


def test_admin_only_commands_are_refused_without_auth(server: ZdbProcess) -> None:
    client = user(server)
    before = int(info_fields(client.execute_command("INFO"))["commands_unauthorized"])
    for command in ADMIN_ONLY:
        assert error_of(client, *command) == "Permission denied", command
    after = int(info_fields(client.execute_command("INFO"))["commands_unauthorized"])
    assert after - before == len(ADMIN_ONLY)
    # Nothing happened: NSJUMP did not jump, the timestamped SET wrote nothing.
    assert client.execute_command("GET", "k") is None
    assert b"x" not in client.execute_command("NSLIST")
    client.close()


def test_everyday_commands_need_no_admin(server: ZdbProcess) -> None:
    client = user(server)
    key = unique("key")
    assert client.execute_command("SET", key, "v") == key.encode()
    assert client.execute_command("GET", key) == b"v"
    assert client.execute_command("DEL", key) == b"OK"
    assert client.execute_command("NSLIST")[0] == b"default"
    assert isinstance(client.execute_command("DBSIZE"), int)
    assert client.execute_command("INFO").startswith(b"# server\n")
    # NSINFO works for anybody, without the paths only an admin sees.
    info = info_fields(client.execute_command("NSINFO", "default"))
    assert "entries" in info and "data_path" not in info and "data_current_id" not in info
    admin = logged_in(server)
    assert "data_path" in info_fields(admin.execute_command("NSINFO", "default"))
    # NSINFO of a private namespace is readable too.
    name = unique()
    admin.execute_command("NSNEW", name)
    admin.execute_command("NSSET", name, "password", "pw")
    admin.execute_command("NSSET", name, "public", "0")
    assert info_fields(client.execute_command("NSINFO", name))["public"] == "no"
    # An admin is not let into a private namespace without its password.
    assert error_of(admin, "SELECT", name) == "Namespace protected and private"
    client.close()
    admin.close()


def test_redis_cli_authenticates_with_auth(server: ZdbProcess) -> None:
    assert redis_cli(server.port, "NSJUMP") == "Permission denied"
    out = redis_cli(server.port, stdin=f"AUTH {PASSWORD}\nNSJUMP\nHOOKS\n".encode())
    assert out.splitlines()[:2] == ["OK", "OK"]


def test_auth_is_disabled_without_an_admin_password(zdb: ZdbProcess) -> None:
    client = raw(zdb.client())
    assert error_of(client, "AUTH", "anything") == "Authentication disabled"
    nonce = client.execute_command("AUTH", "SECURE", "CHALLENGE")  # the nonce still works
    assert len(nonce) == 16
    assert error_of(client, "AUTH", "SECURE", "0" * 40) == "Authentication disabled"
    assert client.execute_command("NSJUMP") == b"OK"  # everybody is admin
    assert error_of(client, "STOP") == "Unauthorized"
    assert client.execute_command("PING") == b"PONG"
    client.close()


def test_stop_needs_an_admin(zdb_factory: Callable[..., ZdbProcess]) -> None:
    node = zdb_factory("--admin", PASSWORD)
    client = user(node)
    assert error_of(client, "STOP") == "Unauthorized"
    assert client.execute_command("PING") == b"PONG"
    client.execute_command("SET", "kept", "yes")
    assert client.execute_command("AUTH", PASSWORD) == b"OK"
    with RawSocket(node.port) as sock:
        assert sock.command("AUTH", PASSWORD) == b"+OK\r\n"
        assert sock.command("STOP", "now") == b"+Stopping\r\n"
        sock.expect_closed()
    assert node.process is not None
    assert node.process.wait(timeout=15) == 0
    node.process = None
    node.start()
    assert raw(node.client()).execute_command("GET", "kept") == b"yes"


# -- --protect --------------------------------------------------------------------------------


def test_protect_makes_default_read_only_until_selected_with_the_password(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    node = zdb_factory("--admin", PASSWORD, "--protect")
    client = user(node)
    assert error_of(client, "SET", "k", "v") == "Namespace is in read-only mode"
    assert client.execute_command("GET", "k") is None
    assert client.execute_command("AUTH", PASSWORD) == b"OK"
    assert (
        error_of(client, "SET", "k", "v") == "Namespace is in read-only mode"
    )  # AUTH is not enough
    assert error_of(client, "SELECT", "default", "wrong") == "Access denied"
    assert client.execute_command("SELECT", "default", PASSWORD) == b"OK"
    assert client.execute_command("SET", "k", "v") == b"k"
    # Other clients read it; SELECT SECURE with the admin password opens it too.
    reader = user(node)
    assert reader.execute_command("GET", "k") == b"v"
    assert error_of(reader, "DEL", "k") == "Namespace is in read-only mode"
    nonce = reader.execute_command("AUTH", "SECURE", "CHALLENGE")
    assert (
        reader.execute_command("SELECT", "default", "SECURE", secure_hash(nonce, PASSWORD)) == b"OK"
    )
    assert reader.execute_command("DEL", "k") == b"OK"
    # Other namespaces are not affected.
    client.execute_command("NSNEW", "free")
    reader.execute_command("SELECT", "free")
    assert reader.execute_command("SET", "k", "v") == b"k"
    assert info_fields(reader.execute_command("NSINFO", "default"))["password"] == "yes"
    client.close()
    reader.close()


def test_protect_without_admin_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [ZGRID, "zdb", "run", "--data", str(tmp_path / "d"), "--index", str(tmp_path / "i"),
         "--listen", "127.0.0.1", "--port", "1", "--protect"],
        capture_output=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert b"admin" in done.stdout + done.stderr
