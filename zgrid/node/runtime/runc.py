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
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from zgrid.atomic import write_atomic
from zgrid.node.errors import RuntimeFailure, SystemCommandError
from zgrid.node.runtime.base import (
    BindMount,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
)
from zgrid.node.runtime.bundle import build_config, cgroup_parent, cgroups_path, validate_spec
from zgrid.node.runtime.shim import PAUSED
from zgrid.node.runtime.supervise import (
    read_exits,
    read_status,
    shim_alive,
    start_shim,
    stop_shim,
    wait_first_start,
)
from zgrid.node.system import run_command

__all__ = ["RuncRuntime", "spec_from_json", "spec_to_json"]


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
            await stop_shim(directory)
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
                if current == spec and shim_alive(directory):
                    await wait_first_start(directory)
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
        report = await start_shim(
            directory, shim_config, python=self.python, what=f"container {spec.id}"
        )
        if report.get("ok") is not True:
            raise RuntimeFailure(_explain(spec, str(report["error"])))

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
        supervised = self._read_spec(directory) is not None and shim_alive(directory)
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
        shim = read_status(directory)
        alive = shim_alive(directory)
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
            exits=read_exits(directory),
            oom_kills=int(shim.get("oom_kills", 0)),
            restarts=int(shim.get("restarts", 0)),
            spec=spec,
        )

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
                if shim_alive(directory):
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
