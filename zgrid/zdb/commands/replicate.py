"""WAIT (notify when another client runs a command), MIRROR and MASTER (replication)."""

from __future__ import annotations

import time

from zgrid.zdb.commands.base import c_atoll, need_admin
from zgrid.zdb.commands.names import match
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError
from zgrid.zdb.resp import simple

__all__ = ["NO_REPLY", "master", "mirror", "wait"]

# WAIT answers later (when the command runs, or -Timeout), not now.
NO_REPLY = b""


def wait(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) not in (2, 3):
        raise CommandError("Invalid arguments")
    target = match(args[1])
    if target is None:
        raise CommandError("Unknown command to watch")
    timeout_ms = 5000
    if len(args) == 3:
        if len(args[2]) > 16:
            raise CommandError("Invalid timeout")
        timeout_ms = c_atoll(args[2])  # strtoull: the leading number, "250ms" is 250
        if not 100 <= timeout_ms <= 1_800_000:
            raise CommandError("Invalid timeout")
    session.waiting = (target, time.monotonic() + timeout_ms / 1000)
    context.listen()
    return NO_REPLY


def mirror(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    session.mirror = True
    context.listen()
    return simple("Starting mirroring")


def master(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    session.master = True
    return simple("Hello, master")
