"""The shared HTTP edge through a real uvicorn server on a free port: start failures,
connection bounds, bounded bodies and the one error body shape."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from zgrid.web import (
    AppServer,
    ConnectionLimits,
    RequestRefused,
    ServeError,
    bind_socket,
    install_error_handlers,
    read_body,
)

log = logging.getLogger("tests.web")


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, log=log)

    @app.get("/items/{item}")
    async def item(item: int) -> dict[str, int]:
        return {"item": item}

    @app.put("/items/{item}")
    async def put_item(item: int) -> dict[str, int]:
        return {"item": item}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await read_body(request, limit=1000, idle_timeout=0.5))}

    @app.get("/refuse")
    async def refuse() -> None:
        raise RequestRefused(409, "conflict", "already there")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret detail")

    return app


@asynccontextmanager
async def _serving(limits: ConnectionLimits) -> AsyncIterator[AppServer]:
    server = AppServer(_app(), host="127.0.0.1", port=0, limits=limits)
    server.bind()
    task = asyncio.create_task(server.serve())
    try:
        assert await server.wait_started(task)
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)


def _run(limits: ConnectionLimits, body: Callable[[AppServer], Awaitable[None]]) -> None:
    async def main() -> None:
        async with _serving(limits) as server:
            await body(server)

    asyncio.run(main())


def test_a_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError) as refused:
            bind_socket("127.0.0.1", port)
        assert str(refused.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def test_an_unknown_host_is_one_clear_error() -> None:
    with pytest.raises(ServeError, match=r"cannot listen on no-such-host\.invalid:1: unknown"):
        bind_socket("no-such-host.invalid", 1)


def test_every_address_takes_both_families() -> None:
    sock = bind_socket("", 0)
    try:
        port = sock.getsockname()[1]
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family) as client:
                client.connect((host, port))
    finally:
        sock.close()


def test_errors_share_one_body_and_crashes_name_no_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(server: AppServer) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            answers: dict[str, Any] = {}
            paths = {"/items/9999": "/items/" + "9" * 5000}
            for key in ("/items/1", "/items/x", "/items/9999", "/nowhere", "/refuse"):
                answers[key] = await client.get(paths.get(key, key))
            crash = await client.get("/crash")
        assert answers["/items/1"].json() == {"item": 1}
        assert answers["/items/x"].status_code == 400
        assert answers["/items/x"].json()["error"]["code"] == "bad_request"
        assert "path.item" in answers["/items/x"].json()["error"]["message"]
        assert answers["/items/9999"].status_code == 400
        assert answers["/nowhere"].status_code == 404
        assert answers["/nowhere"].json()["error"]["code"] == "not_found"
        assert answers["/refuse"].status_code == 409
        assert answers["/refuse"].json() == {
            "error": {"code": "conflict", "message": "already there"}
        }
        assert crash.status_code == 500
        assert crash.json()["error"]["code"] == "internal"
        assert "secret" not in crash.text

    with caplog.at_level(logging.ERROR, logger="tests.web"):
        _run(ConnectionLimits(), body)
    assert "secret detail" in caplog.text  # logged for the operator, not sent to the client


def test_bodies_are_bounded_in_size_and_time() -> None:
    async def body(server: AppServer) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            small = await client.post("/echo", content=b"x" * 10)
            large = await client.post("/echo", content=b"x" * 2000)

            async def dribble() -> AsyncIterator[bytes]:
                yield b"x"
                await asyncio.sleep(2)
                yield b"x"

            stalled = await client.post("/echo", content=dribble())
        assert small.json() == {"size": 10}
        assert large.status_code == 413
        assert large.json()["error"]["code"] == "too_large"
        assert stalled.status_code == 408

    _run(ConnectionLimits(), body)


async def _closed_within(port: int, seconds: float, send: bytes, drip: bytes = b"") -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(send)
    try:
        while time.monotonic() - started < seconds:
            if drip:
                writer.write(drip)
            try:
                data = await asyncio.wait_for(reader.read(1000), 0.2)
            except TimeoutError:
                continue
            if not data or b"431" in data:
                return time.monotonic() - started
        raise AssertionError(f"connection still open after {seconds} s")
    finally:
        writer.close()


def test_idle_and_slowloris_connections_are_closed() -> None:
    limits = ConnectionLimits(header_timeout=0.5)

    async def body(server: AppServer) -> None:
        idle = await _closed_within(server.port, 3, b"")
        slow = await _closed_within(server.port, 3, b"GET / HTTP/1.1\r\n", drip=b"X")
        assert idle < 2 and slow < 2

    _run(limits, body)


def test_huge_headers_are_refused() -> None:
    limits = ConnectionLimits(max_header_bytes=4096)

    async def body(server: AppServer) -> None:
        header = b"GET / HTTP/1.1\r\nx-big: " + b"a" * 10_000
        await _closed_within(server.port, 3, header)

    _run(limits, body)


def test_a_keep_alive_connection_gets_a_new_header_deadline_after_each_answer() -> None:
    limits = ConnectionLimits(header_timeout=0.5)

    async def body(server: AppServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /items/1 HTTP/1.1\r\nhost: x\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(reader.read(1000), 2)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(1000), 3) == b""
        assert time.monotonic() - started < 2
        writer.close()

    _run(limits, body)


def test_a_body_in_the_same_read_as_the_headers_is_not_counted_as_headers() -> None:
    limits = ConnectionLimits(max_header_bytes=512)

    async def body(server: AppServer) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for _ in range(3):  # the same kept-alive connection each time
                answer = await client.post("/echo", content=b"x" * 900)
                assert answer.json() == {"size": 900}
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 900\r\n\r\n" + b"x" * 900)
        assert b"200 OK" in await asyncio.wait_for(reader.read(1000), 3)
        writer.close()

    _run(limits, body)


def test_a_405_names_every_method_of_the_path() -> None:
    # GET and PUT of /items/{item} are two routes: Allow names both, whichever matched.
    async def body(server: AppServer) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            answer = await client.delete("/items/1")
            assert answer.status_code == 405
            assert answer.headers["allow"] == "GET, PUT"
            assert answer.json() == {
                "error": {
                    "code": "method_not_allowed",
                    "message": "DELETE is not allowed on /items/1; allowed: GET, PUT",
                }
            }

    _run(ConnectionLimits(), body)


def test_a_kept_alive_connection_answers_each_request_at_once() -> None:
    # With Nagle's algorithm on the server's side, each response's body waited for the
    # client's delayed acknowledgement of its head: 40 ms for every request but the first.
    async def body(server: AppServer) -> None:
        def ten_requests() -> float:
            with socket.create_connection(("127.0.0.1", server.port)) as client:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                started = time.monotonic()
                for number in range(10):
                    client.sendall(f"GET /items/{number} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    answer = b""
                    while not answer.endswith(b"}"):
                        answer += client.recv(4096)
                return time.monotonic() - started

        seconds = await asyncio.to_thread(ten_requests)
        assert seconds < 0.3, f"ten requests on one connection took {seconds:.2f} s"

    _run(ConnectionLimits(), body)
