"""The blocking wrappers: an interrupted call cleans up after itself before control returns."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import anyio
import pytest

from zgrid.blocking import Blocking


class _Worker:
    def __init__(self) -> None:
        self.cleaned = False
        self.closed = False

    async def work(self) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await asyncio.sleep(0.5)  # a rollback: it must not be cut short
                self.cleaned = True
            raise

    async def close(self) -> None:
        self.closed = True


def test_ctrl_c_lets_the_call_clean_up_before_it_returns() -> None:
    worker = _Worker()
    blocking = Blocking(worker)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        blocking._call(worker.work)
    assert worker.cleaned, "the interrupted call's clean-up was cut short"
    assert time.monotonic() - started >= 0.7
    blocking.close()
    assert worker.closed
