"""The runc container runtime: each container a bundle under ``<root>/containers/<id>/``,
supervised by its own detached shim process (:mod:`zgrid.node.runtime.shim`).

Layout of one container dir: config.json (the OCI bundle; its rootfs is the spec's),
spec.json (the ContainerSpec, to tell a repeated start from a changed one), shim.json
(what the shim needs), shim.lock (flocked by the live shim), shim.pid, status.json
(written by the shim: state, restarts, OOM kills), exits.jsonl, output.log (unless the
spec names its own log). runc keeps its state under ``<root>/runc``; the cgroups are
``/<cgroup_parent(scope)>/<id>`` in every controller, so nodes sharing a machine (and
container ids) never meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from zgrid.atomic import write_atomic
from zgrid.node.errors import RuntimeFailure, SystemCommandError
from zgrid.node.runtime.base import (
    BindMount,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    Exit,
)
from zgrid.node.runtime.bundle import build_config, cgroup_parent, cgroups_path, validate_spec
from zgrid.node.runtime.shim import EXITS_KEPT, PAUSED
from zgrid.node.system import run_command

__all__ = ["RuncRuntime", "spec_from_json", "spec_to_json"]

START_TIMEOUT = 30.0  # seconds for the shim to report its first start
STOP_TIMEOUT = 15.0  # seconds for a shim to kill its container and exit after SIGTERM


def spec_to_json(spec: ContainerSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "rootfs": str(spec.rootfs),
        "args": list(spec.args),
        "env": [list(pair) for pair in spec.env],
        "cwd": spec.cwd,
        "hostname": spec.hostname,
        "cpu": spec.cpu,
        "memory": spec.memory,
        "mounts": [
            {"source": str(m.source), "target": m.target, "readonly": m.readonly}
            for m in spec.mounts
        ],
        "netns": None if spec.netns is None else str(spec.netns),
        "log_path": None if spec.log_path is None else str(spec.log_path),
        "restart": spec.restart,
    }


def spec_from_json(data: dict[str, Any]) -> ContainerSpec:
    return ContainerSpec(
        id=data["id"],
        rootfs=Path(data["rootfs"]),
        args=tuple(data["args"]),
        env=tuple((str(name), str(value)) for name, value in data["env"]),
        cwd=data["cwd"],
        hostname=data["hostname"],
        cpu=data["cpu"],
        memory=data["memory"],
        mounts=tuple(
            BindMount(Path(m["source"]), m["target"], bool(m["readonly"])) for m in data["mounts"]
        ),
        netns=None if data["netns"] is None else Path(data["netns"]),
        log_path=None if data["log_path"] is None else Path(data["log_path"]),
        restart=bool(data["restart"]),
    )


def _cgroup_mounts() -> list[tuple[Path, bool]]:
    """Every cgroup hierarchy's mount point, and whether it holds the memory controller."""
    found: list[tuple[Path, bool]] = []
    with open("/proc/self/mounts") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
                continue
            options = fields[3].split(",")
            found.append((Path(fields[1]), fields[2] == "cgroup2" or "memory" in options))
    # on a hybrid layout the v1 memory hierarchy is the one with limits, not the unified one
    if any(memory for path, memory in found if not str(path).endswith("unified")):
        found = [(path, memory and not str(path).endswith("unified")) for path, memory in found]
    return found


class RuncRuntime:
    """Containers run by runc 1.1 (cgroup v1 or v2), one detached shim each."""

    def __init__(
        self,
        root: Path,
        *,
        scope: str,
        runc: str = "runc",
        python: str = sys.executable,
    ) -> None:
        self.root = Path(root).absolute()
        self.scope = scope
        self.runc = shutil.which(runc) or runc
        self.python = python
        self.runc_root = self.root / "runc"
        self.containers_dir = self.root / "containers"
        self._lock = asyncio.Lock()
        self._cgroups: list[tuple[Path, bool]] | None = None

    # -- paths and small reads ---------------------------------------------------------

    def _dir(self, container_id: str) -> Path:
        if "/" in container_id or container_id in ("", ".", ".."):
            raise RuntimeFailure(f"container id {container_id!r} is not valid")
        return self.containers_dir / container_id

    def _cgroup_dirs(self, container_id: str | None) -> list[Path]:
        """The container's cgroup in every hierarchy (or the scope's parent, for None)."""
        if self._cgroups is None:
            self._cgroups = _cgroup_mounts()
        parent = cgroup_parent(self.scope)
        tail = parent if container_id is None else f"{parent}/{container_id}"
        return [mount / tail for mount, _ in self._cgroups]

    def _memory_cgroup(self, container_id: str) -> Path | None:
        if self._cgroups is None:
            self._cgroups = _cgroup_mounts()
        for mount, memory in self._cgroups:
            if memory:
                return mount / cgroups_path(self.scope, container_id).lstrip("/")
        return None

    def _runc_argv(self, *argv: str) -> list[str]:
        return [self.runc, "--root", str(self.runc_root), *argv]

    def _read_spec(self, directory: Path) -> ContainerSpec | None:
        try:
            return spec_from_json(json.loads((directory / "spec.json").read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _shim_alive(directory: Path) -> bool:
        """True while a shim holds the dir's lock (no pid file or pid reuse involved)."""
        try:
            fd = os.open(directory / "shim.lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @staticmethod
    def _shim_pid(directory: Path) -> int | None:
        """The live shim's pid, checked against its command line."""
        try:
            pid = int((directory / "shim.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if b"zgrid.node.runtime.shim" in cmdline and str(directory).encode() in cmdline:
            return pid
        return None

    async def _runc_state(self, container_id: str) -> dict[str, Any] | None:
        try:
            out = await run_command(self._runc_argv("state", container_id), timeout=30)
        except SystemCommandError as exc:
            if "does not exist" in exc.output or "not exist" in exc.output:
                return None
            raise RuntimeFailure(
                f"cannot read the state of container {container_id}: {exc}"
            ) from exc
        try:
            state = json.loads(out)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    # -- cleaning ----------------------------------------------------------------------

    async def _stop_shim(self, directory: Path) -> None:
        """SIGTERM the shim (it kills and deletes its container), SIGKILL if it hangs."""
        deadline = time.monotonic() + STOP_TIMEOUT
        killed = False
        while self._shim_alive(directory):
            pid = self._shim_pid(directory)
            if pid is not None:
                sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
                killed = killed or sig == signal.SIGKILL
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if killed and time.monotonic() > deadline + 5:
                raise RuntimeFailure(f"the supervisor of {directory.name} does not exit")
            await asyncio.sleep(0.01)

    async def _clean_kernel(self, container_id: str) -> None:
        """No runc state, process or cgroup of ``container_id`` left."""
        try:
            await run_command(self._runc_argv("delete", "--force", container_id), timeout=30)
        except SystemCommandError as exc:
            if "not exist" not in exc.output:
                raise RuntimeFailure(f"cannot delete container {container_id}: {exc}") from exc
        for cgroup in self._cgroup_dirs(container_id):
            await self._remove_cgroup(cgroup)

    async def _remove_cgroup(self, cgroup: Path) -> None:
        for attempt in range(100):
            try:
                cgroup.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 99:
                    raise RuntimeFailure(f"cannot remove cgroup {cgroup}: {exc}") from exc
                # processes killed a moment ago may still be leaving it
                await asyncio.sleep(0.02)

    async def _clean_parent(self) -> None:
        """The scope's cgroup parent, where no container cgroup is left in it (the kernel
        refuses to remove a cgroup with children; starts hold the same lock)."""
        for cgroup in self._cgroup_dirs(None):
            with contextlib.suppress(OSError):
                cgroup.rmdir()

    async def _remove(self, container_id: str) -> None:
        directory = self._dir(container_id)
        if directory.exists():
            await self._stop_shim(directory)
        await self._clean_kernel(container_id)
        if directory.exists():
            shutil.rmtree(directory)

    # -- the Runtime interface ---------------------------------------------------------

    async def start(self, spec: ContainerSpec) -> ContainerStatus:
        try:
            validate_spec(spec)
        except ValueError as exc:
            raise RuntimeFailure(f"cannot run container {spec.id!r}: {exc}") from None
        if not spec.rootfs.is_dir():
            raise RuntimeFailure(f"cannot run container {spec.id}: rootfs {spec.rootfs} is missing")
        if spec.netns is not None and not spec.netns.exists():
            raise RuntimeFailure(
                f"cannot run container {spec.id}: network namespace {spec.netns} does not exist"
            )
        if spec.log_path is not None and not spec.log_path.parent.is_dir():
            raise RuntimeFailure(
                f"cannot run container {spec.id}: the log's directory {spec.log_path.parent}"
                " does not exist"
            )
        for mount in spec.mounts:
            if not mount.source.exists():
                raise RuntimeFailure(
                    f"cannot run container {spec.id}: mount source {mount.source} does not exist"
                )
        async with self._lock:
            directory = self._dir(spec.id)
            if directory.exists():
                current = self._read_spec(directory)
                if current == spec and self._shim_alive(directory):
                    await self._first_start(directory)
                    return await self.status(spec.id)
                if current != spec or not (directory / "shim.json").exists():
                    await self._remove(spec.id)
                else:  # same spec, supervisor gone: start again, keeping the history
                    await self._clean_kernel(spec.id)
            try:
                await self._launch(spec, directory)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._remove(spec.id)
                    await self._clean_parent()
                raise
        return await self.status(spec.id)

    async def _first_start(self, directory: Path) -> None:
        """Wait while a live shim (started by a daemon that died) still makes its first start."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._shim_alive(directory):
            try:
                state = json.loads((directory / "status.json").read_text()).get("state")
            except (OSError, ValueError, AttributeError):
                state = "starting"  # not written yet
            if state != "starting":
                return
            await asyncio.sleep(0.01)

    async def _launch(self, spec: ContainerSpec, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.runc_root.mkdir(parents=True, exist_ok=True)
        config = build_config(spec, scope=self.scope)
        # not fsynced: after a power loss a torn file reads as a half-made container, which
        # recover() removes and start() makes again; a kept one is rewritten on every start
        write_atomic(directory / "config.json", json.dumps(config).encode(), sync=False)
        write_atomic(directory / "spec.json", json.dumps(spec_to_json(spec)).encode(), sync=False)
        memory = self._memory_cgroup(spec.id)
        if not self._cgroups:
            raise RuntimeFailure(
                "no cgroup file system is mounted in this mount namespace (a node started with"
                " `ip netns exec` sees a fresh /sys without /sys/fs/cgroup: enter the network"
                " namespace with `nsenter --net=` instead)"
            )
        shim_config = {
            "id": spec.id,
            "runc": self.runc,
            "runc_root": str(self.runc_root),
            "log": str(spec.log_path or directory / "output.log"),
            "restart": spec.restart,
            "memory_cgroup": None if memory is None else str(memory),
        }
        write_atomic(directory / "shim.json", json.dumps(shim_config).encode(), sync=False)
        (directory / PAUSED).unlink(missing_ok=True)
        lock = os.open(directory / "shim.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            await _flock(lock, directory)
            process = await asyncio.create_subprocess_exec(
                self.python,
                "-S",  # no site: the shim needs the standard library and zgrid alone
                "-m",
                "zgrid.node.runtime.shim",
                str(directory),
                "--lock-fd",
                str(lock),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(lock,),
                start_new_session=True,
                env=_shim_environment(),
            )
        except OSError as exc:
            raise RuntimeFailure(f"cannot start the supervisor of {spec.id}: {exc}") from exc
        finally:
            os.close(lock)
        try:
            out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
        except TimeoutError:
            raise RuntimeFailure(
                f"container {spec.id} did not start within {START_TIMEOUT:g} s"
            ) from None
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError, IndexError):
            report = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
        if report.get("ok") is True:
            return
        if "error" in report:
            raise RuntimeFailure(_explain(spec, str(report["error"])))
        shown = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeFailure(
            f"the supervisor of container {spec.id} failed: {' / '.join(shown) or 'no output'}"
        )

    async def stop(self, container_id: str) -> None:
        async with self._lock:
            await self._remove(container_id)
            await self._clean_parent()

    async def pause(self, container_id: str) -> None:
        await self._freeze(container_id, "pause")

    async def resume(self, container_id: str) -> None:
        await self._freeze(container_id, "resume")

    async def _freeze(self, container_id: str, verb: str) -> None:
        """runc pause/resume; the ``paused`` marker also holds the shim's restarts, so a
        container that exited (and waits for its restart) stays down while paused."""
        directory = self._dir(container_id)
        marker = directory / PAUSED
        supervised = self._read_spec(directory) is not None and self._shim_alive(directory)
        if verb == "pause" and supervised:
            marker.touch()
        elif verb == "resume":
            marker.unlink(missing_ok=True)
        state = await self._runc_state(container_id)
        status = None if state is None else state.get("status")
        if (verb, status) in (("pause", "paused"), ("resume", "running")):
            return
        if status not in ("running", "paused"):
            if supervised:
                return  # between two runs: the shim starts it (or not) by the marker
            raise RuntimeFailure(
                f"cannot {verb} container {container_id}: it is {status or 'not running'}"
            )
        try:
            await run_command(self._runc_argv(verb, container_id), timeout=30)
        except SystemCommandError as exc:
            raise RuntimeFailure(f"cannot {verb} container {container_id}: {exc}") from exc

    async def status(self, container_id: str) -> ContainerStatus:
        directory = self._dir(container_id)
        spec = self._read_spec(directory)
        if spec is None:
            return ContainerStatus(id=container_id, state="absent")
        shim: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            shim = json.loads((directory / "status.json").read_text())
        alive = self._shim_alive(directory)
        runc = await self._runc_state(container_id) if alive else None
        pid: int | None = None
        state: ContainerState
        if runc is not None and runc.get("status") in ("running", "paused"):
            state = "paused" if runc["status"] == "paused" else "running"
            pid = int(runc.get("pid") or 0) or None
        elif alive:
            state = "paused" if (directory / PAUSED).exists() else "restarting"
        else:
            state = "stopped"
        return ContainerStatus(
            id=container_id,
            state=state,
            pid=pid,
            exits=self._exits(directory),
            oom_kills=int(shim.get("oom_kills", 0)),
            restarts=int(shim.get("restarts", 0)),
            spec=spec,
        )

    @staticmethod
    def _exits(directory: Path) -> tuple[Exit, ...]:
        try:
            lines = (directory / "exits.jsonl").read_text().splitlines()[-EXITS_KEPT:]
        except OSError:
            return ()
        exits = []
        for line in lines:
            try:
                item = json.loads(line)
                exits.append(
                    Exit(
                        code=int(item["code"]),
                        signal=None if item["signal"] is None else int(item["signal"]),
                        oom_killed=bool(item["oom_killed"]),
                        at=float(item["at"]),
                        output_tail=str(item["output_tail"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash
        return tuple(exits)

    async def release_kernel(self) -> int:
        """After every process of the node was killed: no runc state or cgroup of any
        container left (their directories stay, so ``start`` runs them again); returns how
        many containers runc or a directory knew of."""
        known = set(await self.containers())
        listed = await run_command(self._runc_argv("list", "-q"), check=False)
        known.update(line.strip() for line in listed.splitlines() if line.strip())
        async with self._lock:
            for container_id in sorted(known):
                await self._clean_kernel(container_id)
                with contextlib.suppress(OSError):
                    (self._dir(container_id) / "init.pid").unlink()
            await self._clean_parent()
        return len(known)

    async def containers(self) -> list[str]:
        if not self.containers_dir.is_dir():
            return []
        return sorted(entry.name for entry in self.containers_dir.iterdir() if entry.is_dir())

    async def recover(self) -> list[str]:
        """Keep containers whose shim lives; clean the kernel side of those whose shim died
        (their dir and history stay: ``start`` runs them again); remove half-made dirs and
        runc containers or cgroups no dir owns."""
        async with self._lock:
            alive: list[str] = []
            for container_id in await self.containers():
                directory = self._dir(container_id)
                if self._shim_alive(directory):
                    alive.append(container_id)
                    continue
                await self._clean_kernel(container_id)
                if self._read_spec(directory) is None or not (directory / "shim.pid").exists():
                    shutil.rmtree(directory)  # made halfway: never started
                else:
                    with contextlib.suppress(OSError):
                        (directory / "init.pid").unlink()
            known = set(await self.containers())
            for container_id in await self._runc_ids():
                if container_id not in known:
                    await self._clean_kernel(container_id)
            for parent in self._cgroup_dirs(None):
                if parent.is_dir():
                    for child in parent.iterdir():
                        if child.is_dir() and child.name not in known:
                            await self._remove_cgroup(child)
            await self._clean_parent()
            return alive

    async def _runc_ids(self) -> list[str]:
        if not self.runc_root.is_dir():
            return []
        try:
            out = await run_command(self._runc_argv("list", "--format", "json"), timeout=30)
        except SystemCommandError as exc:
            raise RuntimeFailure(f"cannot list runc containers: {exc}") from exc
        listed = json.loads(out or "null") or []
        return [str(item["id"]) for item in listed]


async def _flock(fd: int, directory: Path) -> None:
    """Take the shim lock for the shim about to start; only a reader's check (a moment)
    can hold it now, never a shim: every caller stopped the old one first."""
    for _ in range(200):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(0.005)
    raise RuntimeFailure(f"another supervisor still holds {directory / 'shim.lock'}")


def _shim_environment() -> dict[str, str]:
    """The daemon's environment with this zgrid first on the path (the shim runs without
    site-packages, which saves a third of its start)."""
    home = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": home if not path else f"{home}{os.pathsep}{path}"}


def _explain(spec: ContainerSpec, error: str) -> str:
    """runc's error for a start that failed, in the deployer's words first."""
    entry = spec.args[0]
    if "executable file not found" in error or (
        "no such file or directory" in error and entry in error
    ):
        return f"the entrypoint {entry!r} does not exist in the container (runc: {error})"
    if "permission denied" in error and entry in error:
        return f"the entrypoint {entry!r} is not executable (runc: {error})"
    return f"container {spec.id} cannot start: {error}"
