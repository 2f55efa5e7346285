"""What other clients and programs are told: WAIT, MIRROR, MASTER, and the --hook executable."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, encode, raw, shared_server, unique

server = shared_server("server")


def nothing_arrives(sock: RawSocket, seconds: float = 0.3) -> None:
    sock.sock.settimeout(seconds)
    try:
        data = sock.sock.recv(4096)
    except TimeoutError:
        return
    finally:
        sock.sock.settimeout(10)
    raise AssertionError(f"unexpected bytes: {data!r}")


def in_namespace(server: ZdbProcess, name: str) -> RawSocket:
    sock = RawSocket(server.port)
    assert sock.command("SELECT", name) == b"+OK\r\n"
    return sock


# -- WAIT -------------------------------------------------------------------------------------


def test_wait_is_told_when_another_client_runs_the_command(server: ZdbProcess) -> None:
    name = unique()
    raw(server.client()).execute_command("NSNEW", name)
    with in_namespace(server, name) as waiter, in_namespace(server, name) as writer:
        waiter.send(b"*3\r\n$4\r\nWAIT\r\n$3\r\nSET\r\n$5\r\n10000\r\n")
        nothing_arrives(waiter)  # no reply yet
        # The waiter goes on working meanwhile.
        assert waiter.command("PING") == b"+PONG\r\n"
        assert writer.command("GET", "k") == b"$-1\r\n"  # not SET: no notice
        assert writer.command("SETX", "k", "v") == b"$1\r\nk\r\n"  # another entry: no notice
        nothing_arrives(waiter)
        assert writer.command("SET", "k", "w") == b"$1\r\nk\r\n"
        assert waiter.raw_reply() == b"+SET\r\n"
        assert writer.command("SET", "k", "x") == b"$1\r\nk\r\n"
        nothing_arrives(waiter)  # one notice per WAIT


def test_wait_ignores_the_waiter_itself_and_other_namespaces(server: ZdbProcess) -> None:
    name = unique()
    raw(server.client()).execute_command("NSNEW", name)
    with in_namespace(server, name) as waiter, RawSocket(server.port) as elsewhere:
        waiter.send(b"*3\r\n$4\r\nWAIT\r\n$1\r\nS\r\n$3\r\n500\r\n")
        assert waiter.command("SET", "mine", "v") == b"$4\r\nmine\r\n"
        assert elsewhere.command("SET", unique("key"), "v").startswith(b"$")
        started = time.monotonic()
        assert waiter.raw_reply() == b"-Timeout\r\n"
        assert time.monotonic() - started < 2


def test_wait_for_any_command_and_failed_ones(server: ZdbProcess) -> None:
    name = unique()
    raw(server.client()).execute_command("NSNEW", name)

    def wait_for(command: bytes) -> None:
        waiter.send(b"*2\r\n$4\r\nWAIT\r\n$%d\r\n%b\r\n" % (len(command), command))
        # The waiter's own commands do not notify it; the reply proves WAIT was registered.
        assert waiter.command("PING") == b"+PONG\r\n"

    with in_namespace(server, name) as waiter, in_namespace(server, name) as other:
        # The wildcard is told the name of the command that ran.
        wait_for(b"*")
        assert other.command("PING") == b"+PONG\r\n"
        assert waiter.raw_reply() == b"+PING\r\n"
        wait_for(b"")  # empty = wildcard too
        assert other.command("NOSUCH") == b"-Command not supported\r\n"  # unknown: no notice
        nothing_arrives(waiter)
        assert other.command("DEL", "missing") == b"-Key not found\r\n"  # failed, but it ran
        assert waiter.raw_reply() == b"+DEL\r\n"
        wait_for(b"get")
        assert other.command("GET", "x") == b"$-1\r\n"
        assert waiter.raw_reply() == b"+GET\r\n"
        wait_for(b"W")  # WAIT itself
        other.send(b"*3\r\n$4\r\nWAIT\r\n$3\r\nSET\r\n$3\r\n100\r\n")
        assert waiter.raw_reply() == b"+WAIT\r\n"
        assert other.raw_reply() == b"-Timeout\r\n"
        # A second WAIT replaces the first.
        wait_for(b"GET")
        wait_for(b"PING")
        assert other.command("GET", "x") == b"$-1\r\n"
        nothing_arrives(waiter)
        assert other.command("PING") == b"+PONG\r\n"
        assert waiter.raw_reply() == b"+PING\r\n"


def test_wait_argument_errors(server: ZdbProcess) -> None:
    with RawSocket(server.port) as sock:
        assert sock.command("WAIT") == b"-Invalid arguments\r\n"
        assert sock.command("WAIT", "SET", "1000", "x") == b"-Invalid arguments\r\n"
        assert sock.command("WAIT", "NOSUCH") == b"-Unknown command to watch\r\n"
        for timeout in ("99", "1800001", "abc", "1" * 17, "0"):
            assert sock.command("WAIT", "SET", timeout) == b"-Invalid timeout\r\n", timeout
        # Read like strtoull: "150ms" is 150.
        sock.send(encode("WAIT", "SET", "150ms"))
        assert sock.raw_reply() == b"-Timeout\r\n"
        # The limits themselves are accepted: no reply until the timeout.
        sock.send(b"*3\r\n$4\r\nWAIT\r\n$3\r\nSET\r\n$3\r\n100\r\n")
        assert sock.raw_reply() == b"-Timeout\r\n"
        assert sock.command("PING") == b"+PONG\r\n"


# -- MIRROR and MASTER ------------------------------------------------------------------------


def test_mirror_receives_other_clients_commands(server: ZdbProcess) -> None:
    with RawSocket(server.port) as mirror, RawSocket(server.port) as source:
        assert mirror.command("MIRROR") == b"+Starting mirroring\r\n"
        before = int(time.time())
        key = unique("key")
        assert source.command("SET", key, "value") == b"$%d\r\n%b\r\n" % (len(key), key.encode())
        forwarded = mirror.array()
        assert len(forwarded) == 6
        stamp, namespace, owner, *request = forwarded
        assert isinstance(stamp, int) and before <= stamp <= time.time() + 1
        assert namespace == b"default"
        assert isinstance(owner, int) and owner > 0
        assert request == [b"SET", key.encode(), b"value"]
        # Read-only and failing commands are forwarded too, in order; unknown ones are not.
        source.command("NOSUCH")
        source.command("GET", key)
        source.command("DEL", "missing-key")
        assert mirror.array()[3:] == [b"GET", key.encode()]
        assert mirror.array()[3:] == [b"DEL", b"missing-key"]
        # The mirror's own commands are not sent back to it.
        assert mirror.command("PING") == b"+PONG\r\n"
        nothing_arrives(mirror)


def test_master_requests_carry_their_owner_id(server: ZdbProcess) -> None:
    name = unique()
    raw(server.client()).execute_command("NSNEW", name)
    raw(server.client()).execute_command("NSSET", name, "password", "pw")
    with RawSocket(server.port) as mirror, RawSocket(server.port) as master:
        assert mirror.command("MIRROR") == b"+Starting mirroring\r\n"
        assert master.command("MASTER") == b"+Hello, master\r\n"
        announced = mirror.array()  # MASTER itself still came from a plain connection
        assert announced[1] == b"default"
        assert announced[3:] == [b"MASTER"]
        # From now on the last argument is the owner id.
        assert master.command("SELECT", name, "pw", "7") == b"+OK\r\n"
        assert mirror.array()[1:] == [name.encode(), 7, b"SELECT", name.encode(), b"pw"]
        assert master.command("SET", "k", "v", "42") == b"$1\r\nk\r\n"
        assert mirror.array()[1:] == [name.encode(), 42, b"SET", b"k", b"v"]
        # Read like strtoul: the leading number.
        assert master.command("GET", "k", "9x") == b"$1\r\nv\r\n"
        assert mirror.array()[2:] == [9, b"GET", b"k"]
        # Owner 0: executed, not forwarded.
        assert master.command("SET", "k", "w", "0") == b"$1\r\nk\r\n"
        nothing_arrives(mirror)
        # An owner id longer than 32 bytes: the request is dropped without a reply.
        master.send(b"*3\r\n$3\r\nGET\r\n$1\r\nk\r\n$33\r\n" + b"1" * 33 + b"\r\n")
        assert master.command("GET", "k", "5") == b"$1\r\nw\r\n"
        assert mirror.array()[3:] == [b"GET", b"k"]
        # A master sees the raw password in NSINFO.
        info = master.call("NSINFO", name, "1")
        assert isinstance(info, bytes) and b"\npassword_raw: pw\n" in info
        mirror.reply()


def test_mirror_and_master_need_admin(zdb_factory: Callable[..., ZdbProcess]) -> None:
    node = zdb_factory("--admin", "pw")
    with RawSocket(node.port) as sock:
        assert sock.command("MIRROR") == b"-Permission denied\r\n"
        assert sock.command("MASTER") == b"-Permission denied\r\n"
        assert sock.command("AUTH", "pw") == b"+OK\r\n"
        assert sock.command("MIRROR") == b"+Starting mirroring\r\n"


# -- hooks ------------------------------------------------------------------------------------


def hook_script(directory: Path) -> tuple[Path, Path]:
    """A hook that appends one line per call (its arguments, tab-separated) to a log."""
    log = directory / "hooks.log"
    script = directory / "hook.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"log='{log}'\n"
        'line="$1"; shift\n'
        'for argument in "$@"; do line="$line\t$argument"; done\n'
        'printf "%s\\n" "$line" >> "$log"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def events(log: Path, wanted: int, timeout: float = 10.0) -> list[list[str]]:
    """The hook calls logged so far, once at least ``wanted`` are there."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= wanted or time.monotonic() > deadline:
            return [line.split("\t") for line in lines]
        time.sleep(0.02)


def test_hooks_run_with_the_right_arguments(
    zdb_factory: Callable[..., ZdbProcess], tmp_path: Path
) -> None:
    script, log = hook_script(tmp_path)
    node = zdb_factory("--hook", str(script), "--datasize", "512k")
    instance = f"tcp://127.0.0.1:{node.port}"
    assert events(log, 2)[:2] == [
        ["namespaces-init", instance, str(node.index), str(node.data)],
        ["ready", instance],
    ]
    client = raw(node.client())
    assert client.execute_command("NSNEW", "hooked") == b"OK"
    assert events(log, 3)[2] == ["namespace-created", instance, "hooked"]
    client.execute_command("SELECT", "hooked")
    client.execute_command("SET", "k", "1")
    client.execute_command("SET", "k", "2")  # makes i0 dirty
    assert client.execute_command("NSJUMP") == b"OK"
    index, data = node.index / "hooked", node.data / "hooked"
    jumps = events(log, 5)[3:5]
    assert ["jump-index", instance, f"{index}/i0", f"{index}/i1", "0"] in jumps
    assert ["jump-data", instance, f"{data}/d0", f"{data}/d1"] in jumps
    # The jump-index hook exited with 0: the dirty list was cleared.
    assert client.execute_command("INDEX", "DIRTY") == []
    client.execute_command("NSSET", "hooked", "worm", "1")
    assert events(log, 6)[5] == ["namespace-updated", instance, "hooked"]
    client.execute_command("RELOAD", "hooked")
    assert events(log, 7)[6] == ["namespace-reloaded", instance, "hooked"]
    client.execute_command("SELECT", "default")
    client.execute_command("NSDEL", "hooked")
    assert events(log, 8)[7] == ["namespace-deleted", instance, "hooked"]
    # Rotation by size fires the jump hooks too.
    big = b"x" * (200 * 1024)
    for number in range(3):
        client.execute_command("SET", f"big{number}", big + bytes([number]))
    client.execute_command("SET", "big-last", big)
    default = node.index / "default"
    rotation = [line for line in events(log, 10)[8:] if line[0] == "jump-index"]
    assert rotation and rotation[0][2:4] == [f"{default}/i0", f"{default}/i1"]

    listed = client.execute_command("HOOKS")
    names = [entry[0] for entry in listed]
    assert names[:3] == [b"namespaces-init", b"ready", b"namespace-created"]
    created = listed[2]
    assert created[1] == [b"hooked"]
    assert created[2] > 0 and abs(created[3] - time.time()) < 60
    assert created[4] >= created[3] and created[5] == 0
    client.close()
    node.stop()  # SIGTERM
    calls = events(log, 12)
    # On SIGTERM: "close" (blocking), then one "namespace-closing" per namespace.
    assert calls[10] == ["close", instance]
    assert calls[11] == [
        "namespace-closing", instance, "default", f"{default}/i1", f"{node.data}/default/d1", "",
    ]  # fmt: skip
    assert len(calls) == 12


def test_hooks_list_is_empty_without_a_hook(server: ZdbProcess) -> None:
    client = raw(server.client())
    client.execute_command("NSJUMP")
    assert client.execute_command("HOOKS") == []
    client.close()


def test_dualnet_serves_the_unix_socket_and_tcp(
    zdb_factory: Callable[..., ZdbProcess], tmp_path: Path
) -> None:
    path = tmp_path / "zdb.sock"
    node = zdb_factory("--socket", str(path), "--dualnet")
    client = raw(node.client())
    client.execute_command("SET", "k", "over tcp")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.settimeout(10)
        unix.connect(str(path))
        unix.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        assert unix.recv(100) == b"$8\r\nover tcp\r\n"
    client.close()


def test_acknowledged_writes_survive_kill9(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    node = zdb_factory("--sync")
    client = raw(node.client())
    assert client.execute_command("SET", "k", "v") == b"k"
    node.kill9()
    node.start()
    assert raw(node.client()).execute_command("GET", "k") == b"v"


def test_reads_of_an_offloaded_data_file(zdb_factory: Callable[..., ZdbProcess]) -> None:
    node = zdb_factory()
    client = raw(node.client())
    client.execute_command("SET", "old", "in d0")
    client.execute_command("NSJUMP")
    client.execute_command("SET", "new", "in d1")
    client.close()
    node.stop()
    (node.data / "default" / "d0").rename(node.root / "d0.offloaded")
    node.start()
    client = raw(node.client())
    # Only reading a payload needs the file; the index answers the rest.
    assert client.execute_command("EXISTS", "old") == 1
    assert client.execute_command("LENGTH", "old") == 5
    assert client.execute_command("SCAN")[1][0][0] == b"old"
    assert client.execute_command("GET", "new") == b"in d1"
    with RawSocket(node.port) as sock:
        assert sock.command("GET", "old") == b"-Internal Error\r\n"
        assert sock.command("MGET", "new", "old") == b"*2\r\n$5\r\nin d1\r\n-Internal Error\r\n"
        assert sock.command("CHECK", "old") == b":-1\r\n"
    client.close()


def test_missing_data_hook_can_bring_a_file_back(
    zdb_factory: Callable[..., ZdbProcess], tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    script, log = hook_script(tmp_path)
    script.write_text(
        script.read_text()
        # After the script's "shift", $1 is the instance id and $2 the missing file.
        + f'case "$line" in missing-data*) cp "{backup}/$(basename "$2")" "$2";; esac\n'
    )
    node = zdb_factory("--hook", str(script))
    instance = f"tcp://127.0.0.1:{node.port}"
    client = raw(node.client())
    client.execute_command("SET", "old", "in d0")
    client.execute_command("NSJUMP")
    client.close()
    node.stop()
    d0 = node.data / "default" / "d0"
    d0.rename(backup / "d0")
    node.start()
    client = raw(node.client())
    calls = len(events(log, 0))
    assert client.execute_command("GET", "old") == b"in d0"
    assert ["missing-data", instance, str(d0)] in events(log, calls + 1)
    client.close()
