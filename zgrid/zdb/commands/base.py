"""Shared pieces of the command handlers: the handler type, 0-db's argument checks, replies."""

from __future__ import annotations

from collections.abc import Callable

from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError
from zgrid.zdb.namespace import MAX_KEY_LENGTH
from zgrid.zdb.resp import OK, c_atoll
from zgrid.zdb.store import MAX_NAMESPACE_LENGTH

__all__ = [
    "OK",
    "Handler",
    "c_atoll",
    "c_string",
    "check_args",
    "check_key",
    "check_min_args",
    "check_namespace_name",
    "need_admin",
    "not_frozen",
    "writable",
]

Handler = Callable[[ServerContext, Session, list[bytes]], bytes]


def check_args(args: list[bytes], count: int) -> None:
    """0-db's command_args_validate: exact count, no empty argument."""
    if len(args) != count:
        raise CommandError("Unexpected arguments")
    if not all(args):
        raise CommandError("Invalid argument")


def check_min_args(args: list[bytes], count: int) -> None:
    if len(args) < count:
        raise CommandError("Missing arguments")
    if not all(args):
        raise CommandError("Invalid argument")


def check_key(key: bytes) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise CommandError("Invalid key")


def check_namespace_name(name: bytes) -> str:
    if len(name) > MAX_NAMESPACE_LENGTH:
        raise CommandError("Namespace too long")
    return c_string(name)


def c_string(argument: bytes) -> str:
    """An argument as 0-db's C code sees it: up to its first NUL byte."""
    return argument.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def need_admin(context: ServerContext, session: Session) -> None:
    if not session.admin:
        context.stats.commands_unauthorized += 1
        raise CommandError("Permission denied")


def not_frozen(session: Session) -> None:
    if session.namespace.frozen:
        raise CommandError("Namespace is temporarily frozen (read-write disabled)")


def writable(session: Session) -> None:
    """The checks before any write: client writable, namespace not frozen, not locked."""
    if not session.writable:
        raise CommandError("Namespace is in read-only mode")
    not_frozen(session)
    if session.namespace.locked:
        raise CommandError("Namespace is temporarily locked (read-only)")
