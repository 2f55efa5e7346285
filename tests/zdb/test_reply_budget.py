"""Large reads size their reply before reading a payload, so a held reply costs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zgrid.zdb.commands.data import get, mget
from zgrid.zdb.context import Limits, ServerContext, Settings
from zgrid.zdb.errors import CommandError, ReplyHeld
from zgrid.zdb.namespace import Namespace
from zgrid.zdb.store import Store

MIB = 1024 * 1024


class NoRoom:
    """A connection whose share of the reply budget is used up."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def push(self, reply: bytes) -> None:
        raise AssertionError("nothing is pushed")

    def close(self) -> None:
        raise AssertionError("nothing is closed")

    def room_for(self, size: int) -> bool:
        self.asked.append(size)
        return False


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ServerContext]:
    store = Store(data_root=tmp_path / "data", index_root=tmp_path / "index")
    store.open()
    try:
        store.default.set(b"big", b"x" * MIB, 0)
        store.default.set(b"small", b"y" * 100, 0)
        yield ServerContext(store=store, settings=Settings())
    finally:
        store.close()


def test_a_large_get_or_mget_with_no_room_is_held_before_its_payload_is_read(
    context: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unread(self: Namespace, entry: object) -> bytes:
        raise AssertionError("the payload was read")

    monkeypatch.setattr(Namespace, "payload", unread)
    connection = NoRoom()
    session = context.new_session(connection)
    with pytest.raises(ReplyHeld) as held:
        get(context, session, [b"GET", b"big"])
    assert held.value.size == MIB + 16
    with pytest.raises(ReplyHeld):
        mget(context, session, [b"MGET", b"big", b"small"])
    assert connection.asked == [MIB + 16, MIB + 100 + 32]


def test_small_replies_go_whatever_the_budget(context: ServerContext) -> None:
    connection = NoRoom()
    session = context.new_session(connection)
    assert get(context, session, [b"GET", b"small"]) == b"$100\r\n" + b"y" * 100 + b"\r\n"
    assert get(context, session, [b"GET", b"none"]) == b"$-1\r\n"
    assert connection.asked == []


def test_a_get_larger_than_any_reply_may_be_is_refused_unread(
    context: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    context.settings = Settings(limits=Limits(max_reply=MIB))
    monkeypatch.setattr(Namespace, "payload", lambda self, entry: pytest.fail("read"))
    session = context.new_session(NoRoom())
    with pytest.raises(CommandError, match="Reply too large"):
        get(context, session, [b"GET", b"big"])
