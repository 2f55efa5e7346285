"""Namespace commands: NSNEW, NSDEL, NSINFO, NSLIST, NSSET, NSJUMP, RELOAD, FLUSH, DBSIZE."""

from __future__ import annotations

import dataclasses
import logging
import os

from zgrid.zdb.commands.base import OK, c_atoll, check_args, check_namespace_name, need_admin
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError, StorageError
from zgrid.zdb.formats import MODE_SEQ, MODE_USER, data_file_name, index_file_name
from zgrid.zdb.namespace import Namespace
from zgrid.zdb.resp import array, bulk, integer
from zgrid.zdb.store import DEFAULT_NAMESPACE

__all__ = ["dbsize", "flush", "nsdel", "nsinfo", "nsjump", "nslist", "nsnew", "nsset", "reload"]

log = logging.getLogger(__name__)


def _named(context: ServerContext, args: list[bytes]) -> Namespace:
    return _existing(context, check_namespace_name(args[1]))


def _existing(context: ServerContext, name: str) -> Namespace:
    namespace = context.store.get(name)
    if namespace is None:
        raise CommandError("Namespace not found")
    return namespace


def dbsize(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    return integer(session.namespace.entries)


def nsnew(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_args(args, 2)
    context.store.create(check_namespace_name(args[1]))
    return OK


def nsdel(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_args(args, 2)
    name = check_namespace_name(args[1])
    if name == DEFAULT_NAMESPACE:
        raise CommandError("Cannot remove default namespace")
    namespace = context.store.get(name)
    if namespace is None:
        raise CommandError("This namespace doesn't exists")
    if session.namespace is namespace:
        raise CommandError("Cannot remove namespace you're currently using.")
    try:
        context.store.delete(name)
    except StorageError as exc:
        log.error("%s", exc)
        raise CommandError("Could not remove namespace") from None
    for other in context.sessions:
        if other.namespace is namespace:
            other.detached = True
    return OK


def nslist(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    names = [namespace.name.encode("utf-8", "surrogateescape") for namespace in context.store]
    return array([bulk(name) for name in names])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _freespace(path: os.PathLike[str]) -> int | None:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bsize * stats.f_bavail


def nsinfo(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    check_args(args, 2)
    namespace = _named(context, args)
    swapped = int.from_bytes(namespace.next_id.to_bytes(8, "little"), "big")
    index_memory = namespace.index_memory  # a sum over every key: once
    disk = namespace.files.stats
    lines = [
        "# namespace",
        f"name: {namespace.name}",
        f"entries: {namespace.entries}",
        f"public: {_yes(namespace.public)}",
        f"worm: {_yes(namespace.worm)}",
        f"locked: {_yes(namespace.locked or namespace.frozen)}",
        f"password: {_yes(bool(namespace.password))}",
        f"data_size_bytes: {namespace.payload_bytes}",
        f"data_size_mb: {namespace.payload_bytes / 1048576:.2f}",
        f"data_limits_bytes: {namespace.maxsize}",
        f"index_size_bytes: {index_memory}",
        f"index_size_kb: {index_memory / 1024:.2f}",
        f"next_internal_id: 0x{swapped:08x}",
        f"mode: {'sequential' if namespace.mode == MODE_SEQ else 'userkey'}",
        f"stats_index_io_errors: {disk.index_read_failed + disk.index_write_failed}",
        f"stats_index_io_error_last: {disk.index_error_last}",
        "stats_index_faults: 0",
        f"stats_data_io_errors: {disk.data_read_failed + disk.data_write_failed}",
        f"stats_data_io_error_last: {disk.data_error_last}",
        "stats_data_faults: 0",
    ]
    if namespace.maxsize:
        lines.append(
            f"space_available: {(namespace.maxsize - namespace.payload_bytes) % (1 << 64)}"
        )
    for label, directory in (("index", namespace.index_dir), ("data", namespace.data_dir)):
        free = _freespace(directory)
        if free is not None:
            lines += [
                f"{label}_disk_freespace_bytes: {free}",
                f"{label}_disk_freespace_mb: {free / 1048576:.2f}",
            ]
    if session.master and namespace.password:
        lines.append(f"password_raw: {namespace.password}")
    if session.admin:
        fileid = namespace.files.fileid
        lines += [
            f"data_path: {namespace.data_dir}",
            f"data_active: {namespace.data_dir / data_file_name(fileid)}",
            f"index_path: {namespace.index_dir}",
            f"index_active: {namespace.index_dir / index_file_name(fileid)}",
            f"data_current_id: {fileid}",
            f"data_current_offset: {namespace.files.data_size}",
        ]
    return bulk(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))


def _flag(value: bytes) -> bool:
    return value[:1] == b"1"


def nsset(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_args(args, 4)
    name = check_namespace_name(args[1])
    if len(args[2]) > 256 or len(args[3]) > 63:
        raise CommandError("Argument too long")
    namespace = _existing(context, name)
    prop = args[2]
    value = args[3].split(b"\0", 1)[0]
    descriptor = namespace.descriptor
    if prop == b"mode":
        if context.store.fixed_mode is not None:
            raise CommandError("This server instance is configured to use a single runtime mode")
        if namespace.next_id or namespace.files.fileid:
            raise CommandError("Cannot change mode of used namespace")
        if value not in (b"user", b"seq"):
            raise CommandError("Invalid property value (expected: user, seq)")
        namespace.mode = MODE_USER if value == b"user" else MODE_SEQ
        namespace.files.rewrite_mode(namespace.mode)
    elif prop == b"lock":
        namespace.locked, namespace.frozen = _flag(value), False
    elif prop == b"freeze":
        namespace.frozen, namespace.locked = _flag(value), False
    elif namespace.name == DEFAULT_NAMESPACE:
        raise CommandError("Cannot update default namespace")
    elif prop == b"maxsize":
        descriptor = dataclasses.replace(descriptor, maxsize=max(0, c_atoll(value)))
    elif prop == b"password":
        descriptor = dataclasses.replace(
            descriptor, password="" if value == b"*" else value.decode("utf-8", "surrogateescape")
        )
    elif prop == b"public":
        descriptor = dataclasses.replace(descriptor, public=_flag(value))
    elif prop == b"worm":
        descriptor = dataclasses.replace(descriptor, worm=_flag(value))
    else:
        raise CommandError("Invalid property")
    namespace.update_descriptor(descriptor)
    context.store.hooks.fire("namespace-updated", namespace.name)
    return OK


def nsjump(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    session.namespace.jump()
    return OK


def reload(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_args(args, 2)
    namespace = _named(context, args)
    context.store.reload(namespace)
    context.store.hooks.fire("namespace-reloaded", namespace.name)
    return OK


def flush(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    namespace = session.namespace
    if namespace.public or not namespace.password:
        raise CommandError("Flushing public namespace denied")
    context.store.flush_namespace(namespace)
    return OK
