"""The zmachine primitive in vm mode: an flist booted under qemu, its disks as virtio disks,
its planetary network through a tap on the deployment's bridge, its console on the log
channel.

An flist that carries a kernel (``/boot/vmlinuz``, and ``/boot/initrd.img`` if it has
one) boots it, told on its command line that its root is the 9p share ``zroot``. Any
other flist boots the node's default guest (runtime/guest.py), whose first process
mounts the flist under an overlay on the machine's root volume and runs the workload's
entrypoint, or the image's own ``/sbin/init`` when it names none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from zgrid.atomic import write_atomic
from zgrid.node.disks import DiskPool
from zgrid.node.errors import NodeError, ProvisionError, RuntimeFailure
from zgrid.node.flists import Lower
from zgrid.node.naming import machine_mac
from zgrid.node.net.planetary import GATEWAY, Attachment
from zgrid.node.primitives.base import Observed, Provisioning, WorkloadRef
from zgrid.node.primitives.network import MachinePort
from zgrid.node.runtime.guest import (
    GuestUnavailable,
    build_initramfs,
    find_kernel,
    unpack_kernel,
)
from zgrid.node.runtime.qemu import Accelerator, QemuRuntime, VMDisk, VMNic, VMShare, VMSpec
from zgrid.types import ZMachine

__all__ = [
    "BOOT_TIMEOUT",
    "IMAGE_INITRD",
    "IMAGE_KERNEL",
    "Boot",
    "VirtualMachines",
    "resolve_in",
]

IMAGE_KERNEL = "/boot/vmlinuz"
IMAGE_INITRD = "/boot/initrd.img"
IMAGE_INIT = "/sbin/init"
BOOT_TIMEOUT = 180.0  # seconds from qemu's start to the first process's "ready" (TCG is slow)
ROOT_SERIAL = "zgrid-root"
_READY = b"zgrid-init: ready"
_ERROR = b"zgrid-init: error: "
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_DEFAULT_CMDLINE = "console=ttyS0 panic=1 quiet"
_IMAGE_CMDLINE = (
    "console=ttyS0 panic=1 root=zroot rootfstype=9p rootflags=trans=virtio,version=9p2000.L ro"
)


def resolve_in(root: Path, path: str, *, hops: int = 40) -> Path | None:
    """Where ``path`` of the flist is on the node, its symlinks followed as the guest would
    (an absolute target starts again at ``root``, ``..`` never leaves it); None if absent."""
    parts = list(PurePosixPath(path).parts[1:])
    current = root
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops -= 1
            if hops < 0:
                return None
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                current = root
                parts = list(target.parts[1:]) + parts
            else:
                parts = list(target.parts) + parts
            continue
        if not candidate.exists():
            return None
        current = candidate
    return current


@dataclass(frozen=True, slots=True)
class Boot:
    kernel: Path
    initrd: Path | None
    cmdline: str
    default_guest: bool  # the node's guest: its first process says when the machine is up


class VirtualMachines:
    """What vm mode adds to a zmachine: its boot, its disks lent, its VM in qemu."""

    def __init__(self, root: Path, *, runtime: QemuRuntime, disks: DiskPool, cache: Path) -> None:
        self._root = root
        self.runtime = runtime
        self._disks = disks
        self._cache = cache
        self._guest_lock = asyncio.Lock()
        self._guest: tuple[Path, Path] | None = None

    def _dir(self, ref: WorkloadRef) -> Path:
        return self._root / ref.id

    def is_vm(self, ref: WorkloadRef) -> bool:
        return (self._dir(ref) / "mode").is_file() or (self.runtime.vms_dir / ref.id).is_dir()

    # -- boot ----------------------------------------------------------------------

    async def _default_guest(self) -> tuple[Path, Path]:
        """The guest's kernel and initramfs: made (or found in the cache) once per daemon,
        not on every provision (building the initramfs's digest reads all of busybox)."""
        async with self._guest_lock:
            if self._guest is None or not all(path.is_file() for path in self._guest):
                try:
                    kernel = find_kernel()
                    vmlinux = await asyncio.to_thread(unpack_kernel, self._cache, kernel)
                    initrd = await asyncio.to_thread(build_initramfs, self._cache, kernel)
                except (GuestUnavailable, OSError) as exc:
                    raise ProvisionError(
                        f"this node cannot boot a VM from this flist: {exc}"
                    ) from exc
                self._guest = (vmlinux, initrd)
            return self._guest

    async def _boot(self, lower: Lower, machine: ZMachine) -> Boot:
        kernel = resolve_in(lower.path, IMAGE_KERNEL)
        if kernel is not None and kernel.is_file():
            initrd = resolve_in(lower.path, IMAGE_INITRD)
            return Boot(
                kernel,
                initrd if initrd is not None and initrd.is_file() else None,
                _IMAGE_CMDLINE,
                default_guest=False,
            )
        args = _entrypoint(machine.entrypoint)
        if args:
            program = args[0]
            found = (
                resolve_in(lower.path, program)
                if program.startswith("/")
                else next(
                    (p for d in _PATH_DIRS if (p := resolve_in(lower.path, f"{d}/{program}"))),
                    None,
                )
            )
            if found is None or not found.is_file():
                raise ProvisionError(
                    f"the entrypoint {program!r} is not in the flist (a VM without a kernel at"
                    f" {IMAGE_KERNEL} boots the node's guest kernel and runs its entrypoint)"
                )
        else:
            init = resolve_in(lower.path, IMAGE_INIT)
            if init is None or not init.is_file():
                raise ProvisionError(
                    f"the flist has no kernel at {IMAGE_KERNEL} and no init at {IMAGE_INIT},"
                    " and the workload names no entrypoint: a VM needs one of them"
                )
        vmlinux, initrd = await self._default_guest()
        return Boot(vmlinux, initrd, _DEFAULT_CMDLINE, default_guest=True)

    async def _accelerator(self) -> tuple[Accelerator, str]:
        try:
            vmlinux, initrd = await self._default_guest()
        except ProvisionError as exc:
            return "tcg", f"no guest kernel to try KVM with ({exc})"
        return await self.runtime.accelerator(vmlinux, initrd)

    # -- provision -----------------------------------------------------------------

    async def provision(
        self,
        item: Provisioning,
        lower: Lower,
        *,
        root_disk: str,
        root_size: int,
        network: Attachment,
        env: Mapping[str, str],
        output: Path,
        private: Sequence[MachinePort] = (),
    ) -> dict[str, object]:
        """Boot the machine (or find it booted); returns the facts its result adds.
        ``private`` are its taps on private networks, one network card each."""
        machine = item.workload.data
        assert isinstance(machine, ZMachine)
        ref = item.ref
        directory = self._dir(ref)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "mode").write_text("vm\n")
        boot = await self._boot(lower, machine)
        for name in env:
            if not _NAME.match(name):
                raise ProvisionError(
                    f"env variable {name!r} cannot be given to a VM: a name is letters, digits"
                    " and '_', not starting with a digit"
                )
        mounted = [WorkloadRef(ref.twin_id, ref.contract_id, m.name).id for m in machine.mounts]
        for mount, disk in zip(machine.mounts, mounted, strict=True):
            if self._disks.size(disk) is None:
                raise ProvisionError(f"disk {mount.name!r} is not ready (see its own result)")
        await self._disks.create(root_disk, root_size, kind="rootfs")
        self._remember_lent(ref, [root_disk, *mounted])  # intent first: removal gives them back
        disks = [VMDisk(ROOT_SERIAL, await self._disks.lend(root_disk))]
        for index, disk in enumerate(mounted):
            disks.append(VMDisk(f"zd{index}", await self._disks.lend(disk)))
        config = directory / "conf"
        self._write_config(config, machine, ref, network, env=env, private=private)
        accelerator, why_not_kvm = await self._accelerator()
        spec = VMSpec(
            id=ref.id,
            kernel=boot.kernel,
            initrd=boot.initrd,
            cmdline=boot.cmdline,
            cpu=machine.compute_capacity.cpu,
            memory=machine.compute_capacity.memory,
            disks=tuple(disks),
            shares=(VMShare("zroot", lower.path), VMShare("zconf", config)),
            tap=network.tap,
            mac=_mac(ref.id) if network.tap else None,
            log_path=output,
            accelerator=accelerator,
            nics=tuple(VMNic(port.host_link, port.mac) for port in private),
        )
        before = await self.runtime.status(ref.id)
        adopted = before.state in ("running", "paused") and before.spec == spec
        offset = output.stat().st_size if output.exists() else 0
        try:
            status = await self.runtime.start(spec)
        except RuntimeFailure as exc:
            raise ProvisionError(f"the VM cannot start: {exc}") from exc
        if boot.default_guest and not adopted:
            try:
                await self._wait_ready(ref, output, offset)
            except ProvisionError:
                await self.runtime.stop(ref.id)  # a guest that cannot boot is not rebooted
                raise
        return {
            "accelerator": accelerator,
            "accelerator_note": why_not_kvm,
            "restarts": status.restarts,
        }

    def _remember_lent(self, ref: WorkloadRef, disks: list[str]) -> None:
        data = json.dumps(sorted(set(disks) | set(self._lent(ref)))).encode()
        write_atomic(self._dir(ref) / "lent.json", data, sync=False)

    def _lent(self, ref: WorkloadRef) -> list[str]:
        try:
            loaded = json.loads((self._dir(ref) / "lent.json").read_text())
        except (OSError, ValueError):
            return []
        return [str(disk) for disk in loaded] if isinstance(loaded, list) else []

    def _write_config(
        self,
        config: Path,
        machine: ZMachine,
        ref: WorkloadRef,
        network: Attachment,
        *,
        env: Mapping[str, str],
        private: Sequence[MachinePort],
    ) -> None:
        """The guest's config.sh: calls of the first process's functions, every value quoted."""
        config.mkdir(parents=True, exist_ok=True)
        q = shlex.quote
        lines = [f"hostname_is {q(ref.name.replace('_', '-')[:63])}"]
        if network.ipv6:
            mac = _mac(ref.id)  # the card is found by its address, whatever its place
            lines.append(f"planetary {q(network.ipv6)} {q(GATEWAY)} {q(mac)}")
        for port in private:
            lines.append(
                f"private {q(port.mac)} {q(port.ip)}/{port.prefix} {q(port.gateway)}"
                f" {q(port.ip_range)} {port.mtu}"
            )
        for index, mount in enumerate(machine.mounts):
            lines.append(f"disk zd{index} {q(mount.mountpoint)}")
        for name, value in sorted(env.items()):
            lines.append(f"variable {name} {q(value)}")
        args = _entrypoint(machine.entrypoint)
        if args:
            lines.append("entrypoint")
            lines.append("set -- " + " ".join(q(arg) for arg in args))
        write_atomic(config / "config.sh", ("\n".join(lines) + "\n").encode(), sync=False)
        key = env.get("SSH_KEY", "").strip()
        write_atomic(config / "authorized_keys", (key + "\n" if key else "").encode(), sync=False)

    async def _wait_ready(self, ref: WorkloadRef, output: Path, offset: int) -> None:
        """Until the first process says the machine is up; its error, a stopped VM or the
        time limit is the workload's error, with the console's last lines."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        exits = len((await self.runtime.status(ref.id)).exits)
        while True:
            seen = _read_from(output, offset)
            if _READY in seen:
                return
            if _ERROR in seen:
                reason = seen.split(_ERROR, 1)[1].split(b"\n", 1)[0].decode(errors="replace")
                raise ProvisionError(f"the VM did not boot: {reason.strip()}")
            status = await self.runtime.status(ref.id)
            if len(status.exits) > exits or status.state in ("stopped", "absent"):
                raise ProvisionError(
                    f"the VM stopped while booting; its console ended with: {_tail(seen)!r}"
                )
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"the VM did not finish booting within {BOOT_TIMEOUT:g} s; its console"
                    f" ended with: {_tail(seen)!r}"
                )
            await asyncio.sleep(0.05)

    # -- the rest of the lifecycle -------------------------------------------------

    async def remove(self, ref: WorkloadRef) -> None:
        """Stop the VM and give its disks back (the root volume goes with the machine)."""
        await self.runtime.stop(ref.id)
        for disk in self._lent(ref):
            with contextlib.suppress(NodeError):
                await self._disks.give_back(disk)
        shutil.rmtree(self._dir(ref) / "conf", ignore_errors=True)

    async def inspect(self, ref: WorkloadRef) -> Observed:
        status = await self.runtime.status(ref.id)
        if status.state == "absent":
            return Observed(exists=False, detail="its VM is not there")
        if status.state == "stopped":
            return Observed(exists=True, healthy=False, detail="its VM is stopped")
        return Observed(exists=True)


def _entrypoint(entrypoint: str) -> list[str]:
    try:
        return shlex.split(entrypoint) if entrypoint else []
    except ValueError as exc:
        raise ProvisionError(
            f"the entrypoint {entrypoint!r} cannot be split into words: {exc}"
        ) from exc


def _mac(vm_id: str) -> str:
    """The planetary card's address (a private network's card has its own: network.py)."""
    return machine_mac("52:54:00", vm_id)


def _read_from(path: Path, offset: int, limit: int = 1 << 20) -> bytes:
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            handle.seek(offset if offset <= size else 0)  # rotated meanwhile: all of it
            return handle.read(limit)
    except OSError:
        return b""


def _tail(seen: bytes, size: int = 400) -> str:
    return seen[-size:].decode(errors="replace").strip()
