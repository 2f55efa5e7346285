"""Bounded request bodies: refused past a size, timed out when the sender stalls.

A body is never held whole before its size is known to be allowed, and a client
that sends a byte now and then cannot keep a request (and its memory) open forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from zgrid.web.errors import RequestRefused

__all__ = ["BODY_IDLE_TIMEOUT", "iter_body", "read_body"]

BODY_IDLE_TIMEOUT = 30.0  # seconds a body may go without a byte


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, "too_large", f"the request body is larger than {limit} bytes")


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse at once when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def iter_body(
    request: Request, *, limit: int, idle_timeout: float = BODY_IDLE_TIMEOUT
) -> AsyncIterator[bytes]:
    """The body's chunks; RequestRefused once it passes ``limit`` bytes or stalls."""
    check_declared_length(request, limit)
    stream = request.stream().__aiter__()
    size = 0
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), idle_timeout)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise RequestRefused(
                408, "timeout", f"the request body stalled for {idle_timeout:g} s"
            ) from exc
        except ClientDisconnect as exc:
            raise RequestRefused(400, "disconnected", "the client went away mid-body") from exc
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            yield chunk


async def read_body(
    request: Request, *, limit: int, idle_timeout: float = BODY_IDLE_TIMEOUT
) -> bytes:
    """The whole body, at most ``limit`` bytes."""
    chunks = [chunk async for chunk in iter_body(request, limit=limit, idle_timeout=idle_timeout)]
    return b"".join(chunks)
