"""Server commands: PING, TIME, INFO, STOP, HOOKS, INDEX DIRTY, DATA RAW, and the `*` entry."""

from __future__ import annotations

import time

from zgrid.zdb.commands.base import OK, c_atoll, check_min_args, need_admin
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError
from zgrid.zdb.files import DiskStats
from zgrid.zdb.formats import DATA_VERSION, INDEX_VERSION
from zgrid.zdb.resp import array, bulk, integer, simple

__all__ = ["data", "hooks", "index", "info", "invalid", "ping", "stop", "time_"]


def invalid(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    raise CommandError("This is not a valid command")


def ping(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    return b"+PONG\r\n"


def time_(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    now = time.time_ns() // 1000
    seconds, micro = divmod(now, 1_000_000)
    return b"*2\r\n" + bulk(b"%d" % seconds) + bulk(b"%d" % micro)


def info(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    stats = context.stats
    now = int(time.time())

    def mb(value: int) -> str:
        return f"{value / 1048576:.2f}"

    # Summed over the namespaces loaded now (a deleted namespace takes its counts along).
    disk = sum((namespace.files.stats for namespace in context.store), DiskStats())
    text = "\n".join(
        [
            "# server",
            "server_name: 0-db (zdb)",
            f"server_revision: {context.settings.revision}",
            f"engine_revision: {context.settings.revision}",
            f"instance_id: {context.instance}",
            f"boot_time: {context.boot_time}",
            f"uptime: {now - context.boot_time}",
            "",
            "# clients",
            f"clients_lifetime: {stats.clients_lifetime}",
            "",
            "# internals",
            "sequential_key_size: 8",
            f"data_version: {DATA_VERSION}",
            f"index_version: {INDEX_VERSION}",
            "",
            "# stats",
            f"commands_executed: {stats.commands_executed}",
            f"commands_failed: {stats.commands_failed}",
            f"commands_unauthorized: {stats.commands_unauthorized}",
            f"index_disk_read_failed: {disk.index_read_failed}",
            f"index_disk_write_failed: {disk.index_write_failed}",
            f"data_disk_read_failed: {disk.data_read_failed}",
            f"data_disk_write_failed: {disk.data_write_failed}",
            f"index_disk_read_bytes: {disk.index_read_bytes}",
            f"index_disk_read_mb: {mb(disk.index_read_bytes)}",
            f"index_disk_write_bytes: {disk.index_write_bytes}",
            f"index_disk_write_mb: {mb(disk.index_write_bytes)}",
            f"data_disk_read_bytes: {disk.data_read_bytes}",
            f"data_disk_read_mb: {mb(disk.data_read_bytes)}",
            f"data_disk_write_bytes: {disk.data_write_bytes}",
            f"data_disk_write_mb: {mb(disk.data_write_bytes)}",
            f"network_rx_bytes: {stats.network_rx_bytes}",
            f"network_rx_mb: {mb(stats.network_rx_bytes)}",
            f"network_tx_bytes: {stats.network_tx_bytes}",
            f"network_tx_mb: {mb(stats.network_tx_bytes)}",
        ]
    )
    return bulk((text + "\n").encode())


def stop(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    # Only an admin may stop the server (0-db's release build refuses everybody).
    if not session.admin or context.settings.admin_password is None:
        raise CommandError("Unauthorized")
    context.stop()
    return simple("Stopping")


def hooks(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    context.store.hooks.reap()
    parts = [b"*%d\r\n" % len(context.store.hooks.runs)]
    for run in context.store.hooks.runs:
        arguments = array([bulk(a.encode()) for a in run.arguments])
        parts.append(
            b"*6\r\n"
            + bulk(run.name.encode())
            + arguments
            + integer(run.pid)
            + integer(run.started)
            + integer(run.finished)
            + integer(run.status)
        )
    return b"".join(parts)


def index(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_min_args(args, 2)
    if len(args[1]) > 256:
        raise CommandError("Argument too long")
    if args[1].upper() != b"DIRTY":
        raise CommandError("Unknown INDEX subcommand")
    namespace = session.namespace
    if len(args) == 3:
        if len(args[2]) > 256:
            raise CommandError("Argument too long")
        if args[2].upper() != b"RESET":
            raise CommandError("Unknown INDEX DIRTY subcommand")
        namespace.dirty_files.clear()
        return OK
    dirty = sorted(namespace.dirty_files)
    return array([integer(fileid) for fileid in dirty])


def data(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    need_admin(context, session)
    check_min_args(args, 2)
    if len(args[1]) > 256:
        raise CommandError("Argument too long")
    if args[1].upper() != b"RAW":
        raise CommandError("Unknown DATA subcommand")
    check_min_args(args, 4)
    key, previous, crc, flags, timestamp, payload = session.namespace.data_raw(
        c_atoll(args[2]), c_atoll(args[3])
    )
    return (
        b"*6\r\n"
        + bulk(key)
        + integer(previous)
        + bulk(b"0x%08x" % crc)
        + integer(flags)
        + integer(timestamp)
        + bulk(payload)
    )
