"""Bad input on the wire: each case gets its reply or its disconnect, and the server lives on.

Every test runs a second client next to the bad one, during and after the abuse.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator

import pytest

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, encode, redis_cli, shared_server, unique

server = shared_server("server")

MALFORMED = b"-Malformed request, array expected\r\n"
MIB = 1024 * 1024


class Witness(RawSocket):
    """A well-behaved client that must keep working whatever the other one does."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.key = unique("witness")
        assert self.command("SET", self.key, "alive") == bulk(self.key.encode())


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


@pytest.fixture
def witness(server: ZdbProcess) -> Iterator[Witness]:
    with Witness(server.port) as sock:
        yield sock
        assert_serves(sock)
        assert redis_cli(server.port, "PING") == "PONG"


def assert_serves(sock: Witness) -> None:
    assert sock.command("PING") == b"+PONG\r\n"
    assert sock.command("GET", sock.key) == b"$5\r\nalive\r\n"


def abuse(server: ZdbProcess, data: bytes) -> RawSocket:
    sock = RawSocket(server.port)
    sock.send(data)
    return sock


def test_inline_command_is_refused_and_closed(server: ZdbProcess, witness: Witness) -> None:
    with abuse(server, b"PING\r\n") as bad:
        assert bad.expect_closed() == MALFORMED
    assert_serves(witness)


@pytest.mark.parametrize(
    "data",
    [
        b"+PING\r\n",  # a simple string, not an array
        b":1\r\n",
        b"$4\r\nPING\r\n",  # a lone bulk string
        b"hello world\n",  # no \r: lines end at \n
    ],
)
def test_requests_that_are_not_arrays(server: ZdbProcess, witness: Witness, data: bytes) -> None:
    with abuse(server, data) as bad:
        assert bad.expect_closed() == MALFORMED
    assert_serves(witness)


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"*0\r\n", b"-Missing arguments\r\n"),
        (b"*abc\r\n", b"-Missing arguments\r\n"),
        (b"*1\r\n+PING\r\n", b"-Malformed query string\r\n"),  # arguments are bulk strings
        (b"*1\r\n:42\r\n", b"-Malformed query string\r\n"),
        (b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n", b"-Malformed query string\r\n"),
    ],
)
def test_malformed_arrays_get_their_error_then_close(
    server: ZdbProcess, witness: Witness, data: bytes, reply: bytes
) -> None:
    with abuse(server, data) as bad:
        assert bad.expect_closed() == reply
    assert_serves(witness)


@pytest.mark.parametrize("data", [b"*-1\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$-5\r\n"])
def test_negative_lengths_are_protocol_errors(
    server: ZdbProcess, witness: Witness, data: bytes
) -> None:
    with abuse(server, data) as bad:
        received = bad.expect_closed()
    assert received.startswith(b"-") and received.endswith(b"\r\n")
    assert_serves(witness)


def test_requests_before_a_fault_are_answered_first(server: ZdbProcess, witness: Witness) -> None:
    # One packet: a good request, then a stray CRLF (the start of a bad request).
    with abuse(server, encode("PING") + encode("GET", witness.key) + b"\r\n") as bad:
        assert bad.expect_closed() == b"+PONG\r\n$5\r\nalive\r\n" + MALFORMED
    with abuse(server, encode("PING") + b"*0\r\n") as bad:
        assert bad.expect_closed() == b"+PONG\r\n-Missing arguments\r\n"
    assert_serves(witness)


def test_split_requests_are_reassembled(server: ZdbProcess, witness: Witness) -> None:
    data = encode("SET", "split", "x" * 1000) + encode("GET", "split")
    with RawSocket(server.port) as sock:
        for start in range(0, len(data), 7):
            sock.send(data[start : start + 7])
            time.sleep(0.0005)
        assert sock.raw_reply() == b"$5\r\nsplit\r\n"
        assert sock.raw_reply() == b"$1000\r\n" + b"x" * 1000 + b"\r\n"
    assert_serves(witness)


def test_too_many_arguments(server: ZdbProcess, witness: Witness) -> None:
    # 1024 arguments (MGET and 1023 keys) are fine...
    with RawSocket(server.port) as sock:
        reply = sock.call("MGET", *[f"k{n}" for n in range(1023)])
        assert reply == [None] * 1023
    # ...1025 are not.
    with abuse(server, encode("MGET", *[f"k{n}" for n in range(1024)])) as bad:
        assert bad.expect_closed() == b"-Too many arguments\r\n"
    assert_serves(witness)


def send_until_refused(sock: RawSocket, data: bytes, witness: Witness) -> None:
    """Send ``data`` in chunks (checking the witness now and then) until sent or refused."""
    view = memoryview(data)
    for number, start in enumerate(range(0, len(data), MIB)):
        try:
            sock.sock.sendall(view[start : start + MIB])
        except (BrokenPipeError, ConnectionResetError):
            return
        if number % 3 == 0:
            assert_serves(witness)


def test_a_9_mib_argument_is_refused(server: ZdbProcess, witness: Witness) -> None:
    payload = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (9 * MIB) + b"x" * (9 * MIB) + b"\r\n"
    with RawSocket(server.port) as bad:
        send_until_refused(bad, payload, witness)
        assert bad.expect_closed(timeout=10) == b"-Payload too big\r\n"
    assert witness.command("EXISTS", "big") == b":0\r\n"
    assert_serves(witness)


def test_an_8_mib_argument_is_the_limit(server: ZdbProcess, witness: Witness) -> None:
    value = os.urandom(8 * MIB)
    with RawSocket(server.port, timeout=30) as sock:
        key = unique("big")
        assert sock.command("SET", key, value) == b"$%d\r\n%b\r\n" % (len(key), key.encode())
        assert_serves(witness)
        assert sock.command("GET", key) == b"$%d\r\n%b\r\n" % (len(value), value)
        assert sock.command("DEL", key) == b"+OK\r\n"


def test_a_256_byte_key_is_refused_and_the_connection_stays(
    server: ZdbProcess, witness: Witness
) -> None:
    with RawSocket(server.port) as sock:
        assert sock.command("SET", b"k" * 256, "v") == b"-Key too large\r\n"
        assert sock.command("GET", b"k" * 256) == b"-Invalid key\r\n"
        assert sock.command("EXISTS", b"k" * 256) == b"-Invalid key\r\n"
        assert sock.command("PING") == b"+PONG\r\n"
    assert_serves(witness)


def test_unknown_commands_keep_the_connection(server: ZdbProcess, witness: Witness) -> None:
    with RawSocket(server.port) as sock:
        for name in ("FLUSHALL", "CONFIG", "HELLO", "\x00", "ÿÿ"):
            assert sock.command(name, "x") == b"-Command not supported\r\n"
        assert sock.command("PING") == b"+PONG\r\n"
    assert_serves(witness)


def test_binary_garbage(server: ZdbProcess, witness: Witness) -> None:
    generator = random.Random(1234)
    for _ in range(5):
        garbage = bytes(generator.randrange(256) for _ in range(3000))
        garbage = garbage.replace(b"*", b"?")  # never the start of an array
        first = b"?" + garbage + b"\n"
        with abuse(server, first) as bad:
            assert bad.expect_closed() == MALFORMED
        assert_serves(witness)
    # No newline at all in 16 KiB: the connection ends (an error reply is allowed before it).
    with abuse(server, b"\x01" * 16384) as bad:
        received = bad.expect_closed()
    assert received in (b"", MALFORMED)
    assert_serves(witness)


def test_a_client_that_never_reads_its_replies(server: ZdbProcess, witness: Witness) -> None:
    value = os.urandom(MIB)
    key = unique("flood")
    assert witness.command("SET", key, value).startswith(b"$")
    before = _rss_bytes(server)
    count = 160  # 160 MiB of replies asked for in a few KiB of requests
    flooder = RawSocket(server.port)
    flooder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    flooder.send(encode("GET", key) * count)
    try:
        latencies: list[float] = []
        for _ in range(20):
            started = time.monotonic()
            assert_serves(witness)
            latencies.append(time.monotonic() - started)
            time.sleep(0.01)
        assert max(latencies) < 2.0
        assert redis_cli(server.port, "PING") == "PONG"
        grown = _rss_bytes(server) - before
        assert grown < 64 * MIB, f"the server holds {grown} more bytes for one silent client"
        # Once it reads, it gets every reply, in order.
        expected = b"$%d\r\n%b\r\n" % (len(value), value)
        for _ in range(count):
            assert flooder.raw_reply() == expected
        flooder.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            flooder.sock.recv(1)
    finally:
        flooder.close()
    assert_serves(witness)


def _rss_bytes(server: ZdbProcess) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_many_pipelined_requests_in_one_write(server: ZdbProcess, witness: Witness) -> None:
    with RawSocket(server.port) as sock:
        key = unique("pipe")
        sock.send(b"".join(encode("SET", f"{key}{n}", str(n)) for n in range(500)))
        for n in range(500):
            assert sock.raw_reply() == b"$%d\r\n%b\r\n" % (len(f"{key}{n}"), f"{key}{n}".encode())
        sock.send(b"".join(encode("GET", f"{key}{n}") for n in range(500)))
        for n in range(500):
            assert sock.reply() == str(n).encode()
    assert_serves(witness)


def test_abrupt_disconnects_mid_request(server: ZdbProcess, witness: Witness) -> None:
    for cut in (b"*3\r\n$3\r\nSET\r\n$1", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc", b"*"):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(cut)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # with a reset
        assert_serves(witness)
    assert witness.command("EXISTS", "k") == b":0\r\n"


def test_a_stalled_half_request_does_not_block_others(server: ZdbProcess, witness: Witness) -> None:
    key = unique("slow")
    request = encode("SET", key, "x" * 5000)
    with RawSocket(server.port) as slow:
        slow.send(request[:2000])
        for _ in range(3):
            assert_serves(witness)  # while the half request waits
            time.sleep(0.05)
        assert witness.command("EXISTS", key) == b":0\r\n"
        slow.send(request[2000:])
        assert slow.raw_reply() == bulk(key.encode())
    assert witness.command("EXISTS", key) == b":1\r\n"


@pytest.mark.parametrize("frame", [b"%1\r\n", b"%1\r\n~1\r\n"], ids=["map", "map-of-set"])
def test_a_resp3_map_gets_0db_error_after_the_earlier_replies(
    server: ZdbProcess, witness: Witness, frame: bytes
) -> None:
    with abuse(server, encode("PING") + frame) as bad:
        assert bad.expect_closed() == b"+PONG\r\n" + MALFORMED
    assert_serves(witness)
    assert "Fatal error" not in server.log.read_text()
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("count", [b"2000000000", b"4294967295", b"18446744073709551617"])
def test_a_huge_declared_count_is_refused_without_stalling_others(
    server: ZdbProcess, witness: Witness, count: bytes
) -> None:
    # 14 bytes, before any login: the count is checked before anything is allocated for it.
    started = time.monotonic()
    with abuse(server, b"*" + count + b"\r\n") as bad:
        assert_serves(witness)
        assert bad.expect_closed() == b"-Too many arguments\r\n"
    assert time.monotonic() - started < 1.0
    assert "MemoryError" not in server.log.read_text()
