"""Key-value commands: SET/SETX, GET, MGET, DEL, EXISTS, CHECK, LENGTH, KEYTIME."""

from __future__ import annotations

import time

from zgrid.zdb.budget import LARGE_REPLY
from zgrid.zdb.commands.base import (
    OK,
    c_atoll,
    check_args,
    check_key,
    need_admin,
    not_frozen,
    writable,
)
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError, ReplyHeld, StorageError
from zgrid.zdb.namespace import MAX_KEY_LENGTH
from zgrid.zdb.resp import NIL, array, bulk, integer

__all__ = ["check", "delete", "exists", "get", "keytime", "length", "mget", "set_"]


def set_(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) == 4:
        need_admin(context, session)
        timestamp = c_atoll(args[3]) & 0xFFFFFFFF
    elif len(args) != 3:
        raise CommandError("Unexpected arguments")
    else:
        timestamp = int(time.time())
    key, value = args[1], args[2]
    if len(key) > MAX_KEY_LENGTH:
        raise CommandError("Key too large")
    namespace = session.namespace
    if not session.writable or namespace.frozen or namespace.locked:
        writable(session)  # raises the precise error; the common case skips the call
    try:
        written = namespace.set(key, value, timestamp)
    except StorageError:
        raise CommandError("Cannot write data right now") from None
    return NIL if written is None else bulk(written)


def _reserve(context: ServerContext, session: Session, size: int) -> None:
    """Refuse or hold a large reply before any payload is read: reading it anyway costs a copy."""
    if size <= LARGE_REPLY:
        return
    if size > context.settings.limits.max_reply:
        raise CommandError("Reply too large")
    connection = session.connection
    if connection is not None and not connection.room_for(size):
        raise ReplyHeld(size)


def _payload_reply(session: Session, key: bytes, context: ServerContext | None = None) -> bytes:
    """The bulk reply of ``key``'s payload; with ``context``, sized against the reply
    budget before the payload is read."""
    namespace = session.namespace
    entry = namespace.lookup(key)
    if entry is None:
        return NIL
    if context is not None:
        _reserve(context, session, entry.length + 16)
    try:
        return bulk(namespace.payload(entry))
    except StorageError:
        return b"-Internal Error\r\n"


def get(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    check_key(args[1])
    not_frozen(session)
    return _payload_reply(session, args[1], context)


def mget(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) < 2:
        raise CommandError("Invalid arguments")
    for key in args[1:]:
        check_key(key)
    not_frozen(session)
    # Sized before any payload is read: one key asked 100 times must not cost 100 copies.
    size = 0
    for key in args[1:]:
        entry = session.namespace.lookup(key)
        size += 16 + (0 if entry is None else entry.length)
    _reserve(context, session, size)
    return array([_payload_reply(session, key) for key in args[1:]])


def delete(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) == 3:
        need_admin(context, session)
        timestamp = c_atoll(args[2]) & 0xFFFFFFFF
    else:
        check_args(args, 2)
        timestamp = int(time.time())
    check_key(args[1])
    writable(session)
    try:
        session.namespace.delete(args[1], timestamp)
    except StorageError:
        raise CommandError("Cannot delete key (data)") from None
    return OK


def _entry_query(session: Session, args: list[bytes]) -> object:
    check_args(args, 2)
    check_key(args[1])
    not_frozen(session)
    return session.namespace.lookup(args[1])


def exists(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    return integer(0 if _entry_query(session, args) is None else 1)


def check(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    check_key(args[1])
    not_frozen(session)
    entry = session.namespace.lookup(args[1])
    return NIL if entry is None else integer(session.namespace.check(entry))


def length(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    check_key(args[1])
    not_frozen(session)
    entry = session.namespace.lookup(args[1])
    return NIL if entry is None else integer(entry.length)


def keytime(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    check_key(args[1])
    not_frozen(session)
    entry = session.namespace.lookup(args[1])
    return NIL if entry is None else integer(entry.timestamp)
