"""The supervisor of one container or virtual machine: ``python -m zgrid.node.runtime.shim DIR``.

It detaches from whoever started it (fork, the parent exits at once, setsid: the node
daemon can be killed and restarted while the container runs, and init reaps the shim),
makes itself the child subreaper so the container's init becomes its child, and then:

- runs ``runc run --detach`` on the bundle in the container dir, the container's stdout
  and stderr on a pipe the shim copies into the log file (rotated at 8 MiB, one old file
  kept) and whose last 2 KiB it keeps;
- waits for the container's init to exit, appends one JSON line to ``exits.jsonl``
  (code, signal, oom_killed, at, output_tail), ``runc delete --force``s it and, when the
  spec asks for restarts, starts it again after a backoff (1 s doubling to 60 s, reset
  once a run lasted 60 s);
- counts the kernel OOM killer's kills of any process of the container (the memory
  cgroup's ``oom_kill`` counter, woken by a cgroup v1 OOM eventfd) into ``status.json``;
- holds restarts while a ``paused`` file is in the container dir (the node paused it);
- on SIGTERM kills and deletes the container and exits.

With ``argv`` in its config it supervises that process instead of a runc container (a
qemu virtual machine): the process is its own "init", its stdout and stderr (the VM's
serial console) go to the log, a SIGTERM is passed on to it (SIGKILL after
``STOP_GRACE``), and a start while ``paused`` is held adds ``start_paused`` to its argv.

Its first start's outcome goes to the starter as one JSON line on stdout ({"ok": true,
"pid": N} or {"ok": false, "error": "..."}), then stdout and stderr move to shim.log.
Liveness is an flock on shim.lock held for the shim's whole life (handed over already
locked by the starter with ``--lock-fd``, so there is no moment where a starting shim
looks dead). It imports only the standard library's smallest modules: it starts on every
container start.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time

LOG_LIMIT = 8 * 1024 * 1024
TAIL = 2048
EXITS_KEPT = 100
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 60.0  # a run this long resets the backoff
OOM_POLL = 5.0  # seconds between reads of the OOM counter when nothing else wakes the shim
FAILED_START_CODE = 127  # the code recorded for a restart that runc could not start
PAUSED = "paused"  # while this file is in the container dir, an exited container waits
PAUSED_POLL = 0.5
STOP_GRACE = 5.0  # seconds a supervised process has to exit after SIGTERM

_PR_SET_CHILD_SUBREAPER = 36


def _write_atomic(path: str, data: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _become_subreaper() -> None:
    import ctypes  # noqa: PLC0415 - loaded only once the shim has detached

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def runc_message(text: str) -> str:
    """The ``msg="..."`` of runc's last log line, else the text itself (stripped)."""
    for line in reversed(text.strip().splitlines()):
        start = line.find('msg="')
        if start >= 0:
            body = line[start + 5 :]
            end = body.rfind('"')
            message = (body[:end] if end >= 0 else body).replace('\\"', '"')
            return message.removeprefix("runc run failed: ")
    return text.strip()


def _spawn(argv: list[str], out: int) -> int:
    """Start ``argv`` with stdin from /dev/null, stdout and stderr on ``out``."""
    return os.posix_spawn(
        argv[0],
        argv,
        {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, out, 2),
        ],
        setsigdef=(signal.SIGPIPE, signal.SIGHUP, signal.SIGINT, signal.SIGTERM),
        setsigmask=(),
    )


def _read_counter(path: str | None) -> int | None:
    """``oom_kill N`` of a memory.oom_control (v1) or memory.events (v2) file."""
    if path is None:
        return None
    try:
        with open(path) as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


class Shim:
    def __init__(self, directory: str, config: dict[str, object]) -> None:
        self.dir = directory
        self.id = str(config["id"])
        argv = config.get("argv")
        self.argv = [str(part) for part in argv] if isinstance(argv, list) and argv else None
        paused = config.get("start_paused")
        self.start_paused = [str(part) for part in paused] if isinstance(paused, list) else []
        self.runc = str(config.get("runc", ""))
        self.runc_root = str(config.get("runc_root", ""))
        self.log_path = str(config["log"])
        self.restart = bool(config["restart"])
        memory = config.get("memory_cgroup")
        self.memory_dir = str(memory) if memory else None
        self.stopping = False
        self.init_pid: int | None = None
        self.reaped: dict[int, int] = {}
        self.pipe: int | None = None
        self.oom_event: int | None = None
        self.oom_control: int | None = None
        self.run_oom = 0  # OOM kills counted in the current run's cgroup
        self.started_at = 0.0
        self.backoff = BACKOFF_FIRST
        self.restart_at = 0.0
        self.recheck_until = 0.0
        self.tail = b""
        previous = self._read_status()
        self.restarts = _count(previous.get("restarts"))
        self.oom_kills = _count(previous.get("oom_kills"))
        self.log = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self.log_size = os.fstat(self.log).st_size
        self.wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    # -- files ------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _read_status(self) -> dict[str, object]:
        try:
            with open(self._path("status.json")) as handle:
                loaded = json.load(handle)
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _write_status(self, state: str) -> None:
        status = {
            "state": state,
            "pid": self.init_pid,
            "restarts": self.restarts,
            "oom_kills": self.oom_kills,
            "at": time.time(),
        }
        _write_atomic(self._path("status.json"), json.dumps(status))

    def _record_exit(self, code: int, sig: int | None, oom_killed: bool) -> None:
        record = {
            "code": code,
            "signal": sig,
            "oom_killed": oom_killed,
            "at": time.time(),
            "output_tail": self.tail.decode(errors="replace"),
        }
        path = self._path("exits.jsonl")
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        with open(path) as handle:
            lines = handle.readlines()
        if len(lines) > 2 * EXITS_KEPT:
            _write_atomic(path, "".join(lines[-EXITS_KEPT:]))

    def _output(self, data: bytes) -> None:
        if not data:
            return
        self.tail = (self.tail + data)[-TAIL:]
        if self.log_size + len(data) > LOG_LIMIT and self.log_size > 0:
            os.close(self.log)
            os.replace(self.log_path, self.log_path + ".1")
            self.log = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self.log_size = 0
        os.write(self.log, data)
        self.log_size += len(data)

    # -- processes --------------------------------------------------------------------

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _spawn(self, argv: list[str], out: int) -> int:
        return _spawn([self.runc, "--root", self.runc_root, *argv], out)

    def _runc(self, *argv: str) -> tuple[int, str]:
        """Run a runc command to its end; its exit code and output."""
        read, write = os.pipe2(os.O_CLOEXEC)
        try:
            pid = self._spawn(list(argv), write)
        finally:
            os.close(write)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")

    def _delete(self) -> None:
        if self.argv is not None:
            if self.init_pid is not None and self.init_pid not in self.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.init_pid, signal.SIGKILL)
            return
        self._runc("delete", "--force", self.id)

    def _launch_process(self) -> tuple[bool, str]:
        """Start the supervised process; True once it runs (a process that cannot be
        executed at all is the only failure)."""
        assert self.argv is not None
        argv = list(self.argv)
        if os.path.exists(self._path(PAUSED)):
            argv += self.start_paused
        read, write = os.pipe2(os.O_CLOEXEC)
        try:
            self.init_pid = _spawn(argv, write)
        except OSError as exc:
            os.close(read)
            return False, f"cannot run {argv[0]}: {exc.strerror or exc}"
        finally:
            os.close(write)
        os.set_blocking(read, False)
        self.pipe = read
        self.started_at = time.monotonic()
        self._write_status("running")
        return True, ""

    def _launch(self) -> tuple[bool, str]:
        """``runc run --detach``: True once the container's init runs, else runc's error."""
        if self.argv is not None:
            return self._launch_process()
        pid_file = self._path("init.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        read, write = os.pipe2(os.O_CLOEXEC)
        try:
            runc = self._spawn(
                ["run", "--detach", "--pid-file", pid_file, "--bundle", self.dir, self.id], write
            )
        finally:
            os.close(write)
        _, status = os.waitpid(runc, 0)
        os.set_blocking(read, False)
        if os.waitstatus_to_exitcode(status) != 0:
            text = self._drain(read, 0.2)
            os.close(read)
            self._output(text)
            self._delete()
            return False, runc_message(text.decode(errors="replace")) or "runc run failed"
        with open(pid_file) as handle:
            self.init_pid = int(handle.read().strip())
        self.pipe = read
        self.started_at = time.monotonic()
        self._watch_oom()
        self._write_status("running")
        return True, ""

    def _drain(self, fd: int, wait: float) -> bytes:
        """What ``fd`` holds, waiting up to ``wait`` seconds for its writers to finish."""
        chunks = []
        deadline = time.monotonic() + wait
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                select.select([fd], [], [], left)
                continue
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self.reaped[pid] = status

    # -- OOM --------------------------------------------------------------------------

    def _watch_oom(self) -> None:
        self.run_oom = 0
        if self.memory_dir is None:
            return
        control = os.path.join(self.memory_dir, "memory.oom_control")
        try:
            self.oom_control = os.open(control, os.O_RDONLY | os.O_CLOEXEC)
            self.oom_event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            with open(os.path.join(self.memory_dir, "cgroup.event_control"), "w") as handle:
                handle.write(f"{self.oom_event} {self.oom_control}")
        except OSError:
            self._unwatch_oom()  # cgroup v2 or no OOM events: the counter is polled
        self.run_oom = self._oom_counter() or 0

    def _unwatch_oom(self) -> None:
        for fd in (self.oom_event, self.oom_control):
            if fd is not None:
                os.close(fd)
        self.oom_event = self.oom_control = None

    def _oom_counter(self) -> int | None:
        if self.memory_dir is None:
            return None
        for name in ("memory.oom_control", "memory.events"):
            found = _read_counter(os.path.join(self.memory_dir, name))
            if found is not None:
                return found
        return None

    def _count_oom(self) -> None:
        found = self._oom_counter()
        if found is not None and found > self.run_oom:
            self.oom_kills += found - self.run_oom
            self.run_oom = found
            self._write_status("running" if self.init_pid is not None else "restarting")

    # -- the loop ---------------------------------------------------------------------

    def _wait(self, timeout: float) -> None:
        watched = [self.wake_read]
        if self.pipe is not None:
            watched.append(self.pipe)
        if self.oom_event is not None:
            watched.append(self.oom_event)
        ready, _, _ = select.select(watched, [], [], max(timeout, 0.0))
        if self.wake_read in ready:
            while True:
                try:
                    if not os.read(self.wake_read, 512):
                        break
                except BlockingIOError:
                    break
        if self.pipe is not None and self.pipe in ready:
            try:
                data = os.read(self.pipe, 65536)
            except BlockingIOError:
                data = b""
            else:
                if not data:  # every writer closed its end
                    os.close(self.pipe)
                    self.pipe = None
            self._output(data)
        if self.oom_event is not None and self.oom_event in ready:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.oom_event)
            self.recheck_until = time.monotonic() + 1.0
        self._count_oom()

    def _ended(self, status: int) -> None:
        """The container's init exited with wait ``status``: record it, delete the container."""
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        if sig is not None:
            code = 128 + sig
        if self.pipe is not None:
            self._output(self._drain(self.pipe, 0.2))
            os.close(self.pipe)
            self.pipe = None
        self._count_oom()
        oom_killed = self.run_oom > 0
        self._unwatch_oom()
        if self.argv is None:  # a supervised process is gone already (reaped)
            self._delete()
        self.init_pid = None
        self._record_exit(code, sig, oom_killed)
        ran = time.monotonic() - self.started_at
        if ran >= BACKOFF_RESET_AFTER:
            self.backoff = BACKOFF_FIRST
        self.restart_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def _kill(self) -> None:
        """SIGTERM: kill every process of the container and delete it."""
        if self.argv is not None and self.init_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGTERM)
            grace = time.monotonic() + STOP_GRACE
            while self.init_pid not in self.reaped and time.monotonic() < grace:
                self._reap()
                time.sleep(0.01)
        self._delete()
        deadline = time.monotonic() + 10.0
        while self.init_pid is not None and self.init_pid not in self.reaped:
            self._reap()
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.init_pid = None
        self._unwatch_oom()
        self._write_status("stopped")

    def start(self) -> tuple[bool, str]:
        return self._launch()

    def serve(self) -> None:
        """Supervise until SIGTERM, or until the container exits for good."""
        while True:
            if self.stopping:
                self._kill()
                return
            now = time.monotonic()
            if self.init_pid is None:
                held = os.path.exists(self._path(PAUSED))
                if now >= self.restart_at and not held:
                    ok, _ = self._launch()  # runc's error is in the log and the tail
                    if ok:
                        self.restarts += 1
                        self._write_status("running")
                        paused = os.path.exists(self._path(PAUSED))
                        if paused and self.argv is None:  # paused while it started
                            self._runc("pause", self.id)
                    else:
                        self._record_exit(FAILED_START_CODE, None, False)
                        self.restart_at = now + self.backoff
                        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
                    continue
                timeout = PAUSED_POLL if held else self.restart_at - now
            else:
                timeout = 0.1 if now < self.recheck_until else OOM_POLL
            self._wait(timeout)
            self._reap()
            if self.init_pid is not None and self.init_pid in self.reaped:
                self._ended(self.reaped.pop(self.init_pid))
                if not self.restart or self.stopping:
                    self._write_status("stopped")
                    return
                self._write_status("restarting")


def _detach() -> None:
    """Leave the starter: it reaps our parent at once, init (or its subreaper) reaps us."""
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    os.chdir("/")


def _handshake(message: dict[str, object], log: str) -> None:
    with contextlib.suppress(OSError):  # the starter may be gone; the container runs on
        os.write(1, (json.dumps(message) + "\n").encode())
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--lock-fd"):
        sys.stderr.write("usage: python -m zgrid.node.runtime.shim DIR [--lock-fd FD]\n")
        return 2
    directory = os.path.abspath(argv[0])
    if len(argv) == 3:
        lock = int(argv[2])
    else:
        import fcntl  # noqa: PLC0415 - only a shim started by hand locks for itself

        lock = os.open(os.path.join(directory, "shim.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"a shim already supervises {directory}\n")
            return 1
    os.set_inheritable(lock, False)  # the container must never hold the liveness lock
    with open(os.path.join(directory, "shim.json")) as handle:
        config = json.load(handle)
    _detach()
    _write_atomic(os.path.join(directory, "shim.pid"), f"{os.getpid()}\n")
    _become_subreaper()
    shim = Shim(directory, config)
    shim._write_status("starting")  # a starter that died now finds the first start pending
    ok, error = shim.start()
    pid = shim.init_pid
    _handshake(
        {"ok": ok, "pid": pid} if ok else {"ok": False, "error": error}, shim._path("shim.log")
    )
    if not ok:
        shim._write_status("stopped")
        return 1
    shim.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
