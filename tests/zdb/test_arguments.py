"""Hostile arguments to every command: an answer each time, never a dropped connection."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.processes import run_zgrid
from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, ReplyError, shared_server
from zgrid.zdb.commands import NAMES

server = shared_server("server")

HOSTILE: dict[str, bytes] = {
    "not-utf8": b"\xff\xfe\xc3",
    "non-ascii": "pässwörd-é".encode(),
    "huge": b"9" * 40,
    "negative": b"-1",
    "very-negative": b"-" + b"9" * 30,
    "empty": b"",
    "long": b"x" * 300,
    "nul": b"a\0b",
}

CASES = [
    pytest.param(name, count, value, id=f"{name}-{count}-{label}")
    for name, count, (label, value) in itertools.product(
        [name for name in NAMES if name != "STOP"], range(1, 5), HOSTILE.items()
    )
]


def _answers(server: ZdbProcess, name: str, args: list[bytes]) -> None:
    with RawSocket(server.port, timeout=5) as sock:
        sock.call("SELECT", "default")
        sock.send(b"".join(_encode(name.encode(), *args)))
        sock.send(b"*1\r\n$4\r\nPING\r\n")
        first = sock.reply()
        if name == "WAIT" and first == b"PONG":
            return  # the wait started; its answer comes later
        assert first != ReplyError("Internal Error"), (name, args)
        second = sock.reply()
        assert second in (b"PONG", ReplyError("Missing arguments")), (name, args, first, second)


def _encode(*args: bytes) -> list[bytes]:
    parts = [b"*%d\r\n" % len(args)]
    parts += [b"$%d\r\n%b\r\n" % (len(argument), argument) for argument in args]
    return parts


@pytest.mark.parametrize("name", [name for name in NAMES if name != "STOP"])
def test_every_command_answers_hostile_arguments(server: ZdbProcess, name: str) -> None:
    seen = len(server.log.read_text())
    for count, value in itertools.product(range(1, 5), HOSTILE.values()):
        _answers(server, name, [value] * count)
        # Mixed: a sane first argument (a namespace, a key) and hostile ones after it.
        _answers(server, name, [b"default", *[value] * (count - 1)])
    assert "Traceback" not in server.log.read_text()[seen:]


def test_auth_with_a_non_ascii_password_is_denied(zdb_factory: object) -> None:
    server = zdb_factory("--admin", "sécret")  # type: ignore[operator]
    with RawSocket(server.port) as sock:
        assert sock.call("AUTH", "pässwörd") == ReplyError("Access denied")
        assert sock.call("AUTH", b"\xff\xfe") == ReplyError("Access denied")
        assert sock.call("AUTH", "sécret") == b"OK"
        assert sock.call("NSNEW", b"ns-\xff\xfe") == b"OK"
        assert b"ns-\xff\xfe" in sock.call("NSLIST")  # type: ignore[operator]
        assert sock.call("SELECT", b"ns-\xff\xfe") == b"OK"
        assert sock.call("SET", "k", "v") == b"k"
    server.restart()
    with RawSocket(server.port) as sock:
        assert sock.call("SELECT", b"ns-\xff\xfe") == b"OK"
        assert sock.call("GET", "k") == b"v"
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("size", ["nan", "inf", "-inf", "1e400", "-1", "12X", "", "NaNk"])
def test_a_bad_datasize_is_one_usage_error(size: str) -> None:
    done = run_zgrid("zdb", "run", "--datasize", size, "--data", "/nonexistent/d", timeout=30)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "--datasize" in done.stderr and "size" in done.stderr


def test_a_datasize_out_of_range_is_one_error_line(tmp_path: Path) -> None:
    done = run_zgrid("zdb", "run", "--datasize", "1e30", "--data", str(tmp_path / "d"), timeout=30)
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: datasize must be between")
    assert len(done.stderr.strip().splitlines()) == 1
