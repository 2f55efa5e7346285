"""The qemu virtual machine runtime: each VM one ``qemu-system-x86_64`` process under its
own detached shim (shim.py, in process mode), in ``<root>/vms/<id>/``.

Layout of one VM dir: spec.json (the VMSpec, to tell a repeated start from a changed
one), shim.json, shim.lock, shim.pid, status.json, exits.jsonl (as for containers),
qmp.sock (qemu's QMP socket: pause and resume, accelerator queries), output.log (the
serial console, unless the spec names its own log).

KVM is used when it boots a kernel here; some machines have a /dev/kvm that cannot (a
nested hypervisor that lacks what a guest kernel needs), so the first VM of a runtime
boots a probe under KVM, and the answer (kvm, else tcg and why) is kept on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from zgrid.atomic import write_atomic
from zgrid.node.errors import RuntimeFailure
from zgrid.node.runtime.base import ContainerState, Exit
from zgrid.node.runtime.shim import PAUSED
from zgrid.node.runtime.supervise import (
    read_exits,
    read_status,
    shim_alive,
    start_shim,
    stop_shim,
    wait_first_start,
)

__all__ = [
    "Accelerator",
    "QemuRuntime",
    "VMDisk",
    "VMNic",
    "VMShare",
    "VMSpec",
    "VMStatus",
    "probe_accelerator",
]

Accelerator = Literal["kvm", "tcg"]

QEMU = "qemu-system-x86_64"
PROBE_TIMEOUT = 4.0  # seconds a KVM guest has to boot the probe (it takes under one)
QMP_TIMEOUT = 10.0
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True, slots=True)
class VMDisk:
    """A raw disk image attached as a virtio disk; the guest finds it by its serial."""

    serial: str  # at most 20 characters (virtio-blk's serial field)
    image: Path


@dataclass(frozen=True, slots=True)
class VMShare:
    """A host directory shared with the guest over 9p under ``tag``."""

    tag: str
    source: Path
    readonly: bool = True


@dataclass(frozen=True, slots=True)
class VMNic:
    """A further network card: a tap device and the card's hardware address."""

    tap: str
    mac: str


@dataclass(frozen=True, slots=True)
class VMSpec:
    """Everything needed to run one VM; equal specs mean the same VM."""

    id: str  # unique in the runtime; [A-Za-z0-9_.-], at most 64 characters
    kernel: Path
    cmdline: str
    initrd: Path | None = None
    cpu: int = 1
    memory: int = 256 * 1024 * 1024  # bytes of guest RAM
    disks: tuple[VMDisk, ...] = ()
    shares: tuple[VMShare, ...] = ()
    tap: str | None = None  # a tap device for the VM's network card (virtio-net)
    mac: str | None = None
    log_path: Path | None = None  # the serial console; None: <vm dir>/output.log
    accelerator: Accelerator = "tcg"
    restart: bool = True
    nics: tuple[VMNic, ...] = ()  # cards after the first (private networks)


@dataclass(frozen=True, slots=True)
class VMStatus:
    id: str
    state: ContainerState
    pid: int | None = None  # the qemu process
    exits: tuple[Exit, ...] = ()
    restarts: int = 0
    oom_kills: int = 0  # always 0: a VM's memory is bounded by qemu, not by a cgroup
    spec: VMSpec | None = field(default=None, compare=False)


def spec_to_json(spec: VMSpec) -> dict[str, Any]:
    data = asdict(spec)
    for key in ("kernel", "initrd", "log_path"):
        data[key] = None if data[key] is None else str(data[key])
    data["disks"] = [{"serial": d.serial, "image": str(d.image)} for d in spec.disks]
    data["shares"] = [
        {"tag": s.tag, "source": str(s.source), "readonly": s.readonly} for s in spec.shares
    ]
    data["nics"] = [{"tap": n.tap, "mac": n.mac} for n in spec.nics]
    return data


def spec_from_json(data: dict[str, Any]) -> VMSpec:
    return VMSpec(
        id=str(data["id"]),
        kernel=Path(data["kernel"]),
        cmdline=str(data["cmdline"]),
        initrd=None if data["initrd"] is None else Path(data["initrd"]),
        cpu=int(data["cpu"]),
        memory=int(data["memory"]),
        disks=tuple(VMDisk(str(d["serial"]), Path(d["image"])) for d in data["disks"]),
        shares=tuple(
            VMShare(str(s["tag"]), Path(s["source"]), bool(s["readonly"])) for s in data["shares"]
        ),
        tap=data["tap"],
        mac=data["mac"],
        log_path=None if data["log_path"] is None else Path(data["log_path"]),
        accelerator="kvm" if data["accelerator"] == "kvm" else "tcg",
        restart=bool(data["restart"]),
        nics=tuple(VMNic(str(n["tap"]), str(n["mac"])) for n in data.get("nics", [])),
    )


def _validate(spec: VMSpec) -> None:
    if not spec.id or len(spec.id) > 64 or not set(spec.id) <= _ID_CHARS or spec.id[0] == ".":
        raise RuntimeFailure(f"VM id {spec.id!r} is not valid")
    if not 1 <= spec.cpu <= 255:
        raise RuntimeFailure(f"VM {spec.id}: cpu must be 1 to 255, got {spec.cpu}")
    if spec.memory < 64 << 20 or spec.memory % (1 << 20):
        raise RuntimeFailure(f"VM {spec.id}: memory must be whole MiB, at least 64 MiB")
    for path, what in ((spec.kernel, "kernel"), (spec.initrd, "initrd")):
        if path is not None and not path.is_file():
            raise RuntimeFailure(f"VM {spec.id}: its {what} {path} is missing")
    for disk in spec.disks:
        if not disk.image.is_file():
            raise RuntimeFailure(f"VM {spec.id}: disk image {disk.image} is missing")
        if not disk.serial or len(disk.serial) > 20 or "," in disk.serial:
            raise RuntimeFailure(f"VM {spec.id}: disk serial {disk.serial!r} is not valid")
    for share in spec.shares:
        if not share.source.is_dir():
            raise RuntimeFailure(f"VM {spec.id}: shared directory {share.source} is missing")
        if "," in str(share.source) or not share.tag.isalnum():
            raise RuntimeFailure(f"VM {spec.id}: share {share.tag!r} cannot be given to qemu")
    if spec.log_path is not None and not spec.log_path.parent.is_dir():
        raise RuntimeFailure(f"VM {spec.id}: the log's directory {spec.log_path.parent} is missing")


def qemu_argv(spec: VMSpec, qemu: str, qmp: Path) -> list[str]:
    """The qemu command line of ``spec`` (its serial console on stdout)."""
    cpu = "host" if spec.accelerator == "kvm" else "max"
    argv = [
        qemu,
        "-name",
        f"guest={spec.id},debug-threads=off",
        "-machine",
        f"q35,accel={spec.accelerator}",
        "-cpu",
        cpu,
        "-smp",
        str(spec.cpu),
        "-m",
        f"{spec.memory >> 20}M",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",  # a guest that reboots or panics ends the process: the shim sees it
        "-serial",
        "stdio",
        "-qmp",
        f"unix:{qmp},server=on,wait=off",
        "-kernel",
        str(spec.kernel),
        "-append",
        spec.cmdline,
        "-device",
        "virtio-rng-pci",
    ]
    if spec.initrd is not None:
        argv += ["-initrd", str(spec.initrd)]
    for index, disk in enumerate(spec.disks):
        argv += [
            "-drive",
            f"file={disk.image},if=none,id=disk{index},format=raw,cache=writeback",
            "-device",
            f"virtio-blk-pci,drive=disk{index},serial={disk.serial}",
        ]
    for share in spec.shares:
        readonly = ",readonly=on" if share.readonly else ""
        argv += [
            "-virtfs",
            f"local,path={share.source},mount_tag={share.tag},security_model=passthrough,"
            f"id={share.tag}{readonly}",
        ]
    if spec.tap is not None:
        argv += [
            "-netdev",
            f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=net0{',mac=' + spec.mac if spec.mac else ''}",
        ]
    for index, nic in enumerate(spec.nics, start=1):
        argv += [
            "-netdev",
            f"tap,id=net{index},ifname={nic.tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=net{index},mac={nic.mac}",
        ]
    return argv


async def qmp_execute(socket_path: Path, command: str) -> Any:
    """One QMP command on the VM's socket; RuntimeFailure when qemu does not answer."""
    from qemu.qmp import QMPClient, QMPError  # noqa: PLC0415 - loaded by VM nodes only

    client = QMPClient("zgrid")
    try:
        async with asyncio.timeout(QMP_TIMEOUT):
            await client.connect(str(socket_path))
            try:
                return await client.execute(command)
            finally:
                await client.disconnect()
    except (OSError, TimeoutError, QMPError) as exc:
        raise RuntimeFailure(f"qemu does not answer `{command}` on {socket_path}: {exc}") from exc


async def probe_accelerator(qemu: str, kernel: Path, initrd: Path) -> tuple[Accelerator, str]:
    """Whether a guest kernel boots under KVM here: ("kvm", "") or ("tcg", why not)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return "tcg", f"/dev/kvm cannot be opened ({exc.strerror})"
    os.close(fd)
    argv = [
        qemu,
        "-machine",
        "q35,accel=kvm",
        "-cpu",
        "host",
        "-m",
        "128M",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        "console=ttyS0 quiet panic=-1 rdinit=/bin/poweroff -- -f",
    ]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return "tcg", f"a guest kernel did not boot under KVM within {PROBE_TIMEOUT:g} s"
    text = out.decode(errors="replace")
    if process.returncode == 0 and "Power down" in text:
        return "kvm", ""
    last = text.strip().splitlines()[-1:] or ["no output"]
    return (
        "tcg",
        f"KVM cannot boot a guest kernel here (qemu exited {process.returncode}: {last[0]})",
    )


class QemuRuntime:
    """VMs run by qemu, one detached shim each; every method is idempotent."""

    def __init__(self, root: Path, *, qemu: str = QEMU, python: str = sys.executable) -> None:
        self.root = Path(root).absolute()
        self.qemu = shutil.which(qemu) or qemu
        self.python = python
        self.vms_dir = self.root / "vms"
        self._lock = asyncio.Lock()
        self._accelerator: tuple[Accelerator, str] | None = None

    def _dir(self, vm_id: str) -> Path:
        if "/" in vm_id or vm_id in ("", ".", ".."):
            raise RuntimeFailure(f"VM id {vm_id!r} is not valid")
        return self.vms_dir / vm_id

    def _read_spec(self, directory: Path) -> VMSpec | None:
        try:
            return spec_from_json(json.loads((directory / "spec.json").read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- the accelerator -------------------------------------------------------------

    async def accelerator(self, kernel: Path, initrd: Path) -> tuple[Accelerator, str]:
        """KVM if a guest kernel boots under it here, else TCG and why (probed once, kept)."""
        if self._accelerator is not None:
            return self._accelerator
        record = self.root / "accelerator.json"
        key = f"{kernel}:{kernel.stat().st_size}:{int(kernel.stat().st_mtime)}"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(record.read_text())
            if saved["kernel"] == key and saved["accelerator"] in ("kvm", "tcg"):
                self._accelerator = (saved["accelerator"], str(saved["why"]))
                return self._accelerator
        found = await probe_accelerator(self.qemu, kernel, initrd)
        self.root.mkdir(parents=True, exist_ok=True)
        document = {"kernel": key, "accelerator": found[0], "why": found[1], "at": time.time()}
        write_atomic(record, json.dumps(document).encode(), sync=False)
        self._accelerator = found
        return found

    # -- start and stop --------------------------------------------------------------

    async def start(self, spec: VMSpec) -> VMStatus:
        """Run ``spec`` (already running with this spec: nothing to do); return once qemu
        answers on its QMP socket."""
        _validate(spec)
        async with self._lock:
            directory = self._dir(spec.id)
            if directory.exists():
                current = self._read_spec(directory)
                if current == spec and shim_alive(directory):
                    await wait_first_start(directory)
                    return await self.status(spec.id)
                await self._remove(spec.id)
            try:
                await self._launch(spec, directory)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._remove(spec.id)
                raise
        return await self.status(spec.id)

    async def _launch(self, spec: VMSpec, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        qmp = directory / "qmp.sock"
        qmp.unlink(missing_ok=True)
        write_atomic(directory / "spec.json", json.dumps(spec_to_json(spec)).encode(), sync=False)
        config = {
            "id": spec.id,
            "argv": qemu_argv(spec, self.qemu, qmp),
            "start_paused": ["-S"],
            "log": str(spec.log_path or directory / "output.log"),
            "restart": spec.restart,
            "memory_cgroup": None,
        }
        report = await start_shim(directory, config, python=self.python, what=f"VM {spec.id}")
        if report.get("ok") is not True:
            raise RuntimeFailure(f"VM {spec.id} cannot start: {report.get('error')}")
        deadline = time.monotonic() + QMP_TIMEOUT
        while not qmp.exists():
            if time.monotonic() > deadline or not shim_alive(directory):
                break
            status = await self.status(spec.id)
            if status.state != "running":
                break
            await asyncio.sleep(0.02)
        if not qmp.exists():
            tail = _console_tail(spec.log_path or directory / "output.log")
            raise RuntimeFailure(f"qemu did not start VM {spec.id}: {tail or 'no output'}")

    async def _remove(self, vm_id: str) -> None:
        directory = self._dir(vm_id)
        if directory.exists():
            await stop_shim(directory)
            await self._kill_orphans(vm_id)
            shutil.rmtree(directory)

    async def _kill_orphans(self, vm_id: str) -> None:
        """A qemu of this VM whose shim died (kill -9) still holds its disks: it goes."""
        for pid in self._qemu_pids(vm_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._qemu_pids(vm_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _qemu_pids(self, vm_id: str) -> list[int]:
        marker = f"guest={vm_id},".encode()
        qmp = str(self._dir(vm_id) / "qmp.sock").encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and qmp in cmdline:
                found.append(int(entry.name))
        return found

    async def stop(self, vm_id: str) -> None:
        async with self._lock:
            await self._remove(vm_id)

    # -- pause and resume ------------------------------------------------------------

    async def pause(self, vm_id: str) -> None:
        await self._freeze(vm_id, "stop")

    async def resume(self, vm_id: str) -> None:
        await self._freeze(vm_id, "cont")

    async def _freeze(self, vm_id: str, command: str) -> None:
        """QMP stop/cont; the ``paused`` marker also makes a restart start frozen (-S)."""
        directory = self._dir(vm_id)
        marker = directory / PAUSED
        supervised = self._read_spec(directory) is not None and shim_alive(directory)
        if not supervised:
            raise RuntimeFailure(
                f"cannot {'pause' if command == 'stop' else 'resume'} VM {vm_id}: it is not running"
            )
        if command == "stop":
            marker.touch()
        else:
            marker.unlink(missing_ok=True)
        status = await self.status(vm_id)
        if status.pid is None:
            return  # between two runs: the shim starts it frozen or not, by the marker
        await qmp_execute(directory / "qmp.sock", command)

    # -- observe ---------------------------------------------------------------------

    async def status(self, vm_id: str) -> VMStatus:
        directory = self._dir(vm_id)
        spec = self._read_spec(directory)
        if spec is None:
            return VMStatus(id=vm_id, state="absent")
        shim = read_status(directory)
        alive = shim_alive(directory)
        pid = shim.get("pid") if alive and shim.get("state") == "running" else None
        state: ContainerState
        if not alive:
            state = "stopped"
        elif (directory / PAUSED).exists():
            state = "paused"
        elif isinstance(pid, int) and _alive(pid):
            state = "running"
        else:
            state, pid = "restarting", None
        return VMStatus(
            id=vm_id,
            state=state,
            pid=pid if isinstance(pid, int) else None,
            exits=read_exits(directory),
            restarts=int(shim.get("restarts", 0)),
            spec=spec,
        )

    async def vms(self) -> list[str]:
        """Ids of every VM this runtime holds (running, paused or stopped)."""
        if not self.vms_dir.is_dir():
            return []
        return sorted(entry.name for entry in self.vms_dir.iterdir() if entry.is_dir())

    async def recover(self) -> list[str]:
        """Keep VMs whose shim lives; a VM whose shim died loses its qemu (kept running by
        nobody) and its dir keeps its spec, so ``start`` boots it again; half-made dirs go."""
        async with self._lock:
            alive: list[str] = []
            for vm_id in await self.vms():
                directory = self._dir(vm_id)
                if shim_alive(directory):
                    alive.append(vm_id)
                    continue
                await self._kill_orphans(vm_id)
                shutil.rmtree(directory)
            return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _console_tail(path: Path, size: int = 600) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""
