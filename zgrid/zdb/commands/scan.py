"""Walking a namespace: SCAN/SCANX, RSCAN, KEYCUR, KSCAN, HISTORY."""

from __future__ import annotations

from zgrid.zdb.commands.base import check_args, not_frozen
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError, StorageError
from zgrid.zdb.formats import MODE_USER, crc32c
from zgrid.zdb.namespace import MAX_KEY_LENGTH, ScanItem
from zgrid.zdb.resp import NIL, bulk

__all__ = ["history", "keycur", "kscan", "rscan", "scan"]


def _int32(value: int) -> int:
    # 0-db prints these with %d: a u32 of 2**31 or more comes out negative.
    return value - (1 << 32) if value >= 1 << 31 else value


def _scan_reply(cursor: bytes, items: list[ScanItem]) -> bytes:
    parts = [b"*2\r\n", bulk(cursor), b"*%d\r\n" % len(items)]
    for key, size, timestamp in items:
        parts.append(b"*3\r\n%b:%d\r\n:%d\r\n" % (bulk(key), _int32(size), _int32(timestamp)))
    return b"".join(parts)


def _walk(session: Session, args: list[bytes], *, forward: bool) -> bytes:
    not_frozen(session)
    cursor = args[1] if len(args) >= 2 else None
    namespace = session.namespace
    try:
        found = namespace.scan(cursor) if forward else namespace.rscan(cursor)
    except StorageError:
        raise CommandError("Internal Error") from None
    return _scan_reply(*found)


def scan(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    return _walk(session, args, forward=True)


def rscan(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    return _walk(session, args, forward=False)


def keycur(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    not_frozen(session)
    entry = session.namespace.lookup(args[1][:MAX_KEY_LENGTH])
    if entry is None:
        raise CommandError("Key not found")
    return bulk(session.namespace.keycur(entry))


def kscan(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    namespace = session.namespace
    if namespace.mode != MODE_USER:
        raise CommandError("Index running mode doesn't support this feature")
    check_args(args, 2)
    prefix = args[1]
    keys = [key for key in namespace.keys if key.startswith(prefix)]
    if not keys:
        raise CommandError("No keys match")
    if sum(len(key) + 16 for key in keys) > context.settings.limits.max_reply:
        raise CommandError("Reply too large")
    keys.sort(key=lambda key: crc32c(key) & 0xFFFFFF)
    return b"*2\r\n$1\r\n0\r\n*%d\r\n" % len(keys) + b"".join(bulk(key) for key in keys)


def history(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) not in (2, 3):
        raise CommandError("Invalid arguments")
    not_frozen(session)
    link = None
    if len(args) == 3:
        if len(args[2]) != 8:
            raise CommandError("Invalid arguments")
        link = args[2]
    parent, timestamp, payload = session.namespace.history(args[1][:MAX_KEY_LENGTH], link)
    return (
        b"*3\r\n"
        + (NIL if parent is None else bulk(parent))
        + bulk(b"%d" % timestamp)
        + bulk(payload)
    )
