"""The server-wide budget of reply bytes waiting for clients to read them.

Each connection's share is what its transport still buffers, sampled when the
server writes to it; between samples it can only have shrunk, so the sum is an
upper bound, refreshed exactly whenever it looks full. A connection whose large
reply does not fit waits (it is not read from meanwhile) and is woken when room
is made; small replies always go.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["LARGE_REPLY", "Budgeted", "ReplyBudget"]

# Replies up to this size are never held back: PING and SET answer whatever the load.
LARGE_REPLY = 64 * 1024
_RECHECK = 0.01  # seconds between looks at the buffers while someone waits


class Budgeted(Protocol):
    def buffered(self) -> int: ...

    def wake(self) -> None: ...


class ReplyBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[Budgeted, int] = {}
        self._waiting: dict[Budgeted, int] = {}  # and the size of the reply each waits with
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, connection: Budgeted, size: int) -> None:
        """``connection`` buffers ``size`` bytes now."""
        self.total -= self._held.pop(connection, 0)
        if size:
            self._held[connection] = size
            self.total += size

    def forget(self, connection: Budgeted) -> None:
        self.hold(connection, 0)
        self._waiting.pop(connection, None)

    def room(self, size: int, extra: int = 0) -> bool:
        """Whether a reply of ``size`` fits, beside ``extra`` bytes not yet written anywhere."""
        if self.total + extra + size <= self.limit:
            return True
        self._refresh()
        # With nothing buffered anywhere, one reply always goes: someone must progress.
        return self.total + extra + size <= self.limit or self.total + extra == 0

    def wait(self, connection: Budgeted, size: int) -> None:
        """Wake ``connection`` once enough bytes have drained for its reply of ``size``."""
        self._waiting[connection] = size
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_RECHECK, self._wake)

    def _refresh(self) -> None:
        for connection in list(self._held):
            self.hold(connection, connection.buffered())

    def _wake(self) -> None:
        # Only those whose reply now fits: waking the others would only rebuild their
        # replies to hold them again, over and over.
        self._timer = None
        self._refresh()
        room = self.limit - self.total
        for connection, size in list(self._waiting.items()):
            if size <= room or self.total == 0:
                room -= size
                del self._waiting[connection]
                connection.wake()
                if room <= 0:
                    break
        if self._waiting:
            self._timer = asyncio.get_running_loop().call_later(_RECHECK, self._wake)
