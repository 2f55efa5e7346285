"""The blocking form of an async object: its coroutines run on a private event loop thread.

:class:`Blocking` is the base of every generated sync wrapper (:mod:`zgrid.syncgen` writes
them): each method is one line calling :meth:`Blocking._call` or :meth:`Blocking._iterate`
with the coroutine of the same name, so nothing is implemented twice.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["Blocking", "Closable"]

_CLOSE_TIMEOUT = 5.0  # seconds closing the async object may take
_CANCEL_GRACE = 360.0  # seconds an interrupted call may take to clean up after itself

P = ParamSpec("P")
T = TypeVar("T")
Y = TypeVar("Y")


class Closable(Protocol):
    async def close(self) -> None: ...


A = TypeVar("A", bound=Closable)
W = TypeVar("W", bound="Blocking[Any]")


class Blocking(Generic[A]):
    """Owns ``target`` and a portal thread running its coroutines; ``close()`` ends both."""

    def __init__(self, target: A) -> None:
        self._portal_context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._target = target
        self._closed = False

    @classmethod
    def _wrap(cls: type[W], target: Any) -> W:
        """A wrapper around an async object already built (by its own ``open``)."""
        wrapper = cls.__new__(cls)
        Blocking.__init__(wrapper, target)
        return wrapper

    @property
    def target(self) -> A:
        """The async object this wraps."""
        return self._target

    def _call(self, method: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        finished = threading.Event()

        async def run() -> T:
            try:
                return await method(*args, **kwargs)
            finally:
                finished.set()

        future = None
        try:
            future = self._portal.start_task_soon(run)
            return future.result()
        except BaseException:
            # Ctrl-C (or any interruption of this thread) must not leave the call running
            # in the portal's thread, where closing the portal would wait for it forever;
            # what the call does on its way out (a deploy's rollback) runs to its end
            # first, so that closing does not pull the connection from under it.
            if future is not None:
                future.cancel()
                finished.wait(_CANCEL_GRACE)
            raise

    def _iterate(self, stream: AsyncIterator[Y]) -> Iterator[Y]:
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            aclose: Any = getattr(stream, "aclose", None)
            if aclose is not None and not self._closed:
                self._portal.call(aclose)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._close_target)
        finally:
            # A call that Ctrl-C cut short between two steps may still run in the portal:
            # cancel whatever is left instead of waiting for an answer that may never come.
            with contextlib.suppress(RuntimeError):
                self._portal.call(self._portal.stop, True)
            self._portal_context.__exit__(None, None, None)

    async def _close_target(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            await self._target.close()
