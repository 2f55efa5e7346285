"""The zmachine primitive: an flist root under runc (container mode, the default) or
booted under qemu (vm mode, vm.py), with disks, the planetary network and its output on
the log channel.

The flist is mounted once per image (read-only, shared) and overlaid with a writable
upper on the machine's own root volume; the container runs with its own pid, mount,
uts, ipc, net and cgroup namespaces and the cpu and memory the workload asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from zgrid.atomic import write_atomic
from zgrid.node.checks import human_bytes
from zgrid.node.disks import DiskPool
from zgrid.node.errors import NodeError, ProvisionError, RuntimeFailure
from zgrid.node.flists import FlistManager, Lower
from zgrid.node.logs import LogAccess, LogChannel
from zgrid.node.net.planetary import Attachment, PlanetaryNetwork
from zgrid.node.net.public import PUBLIC_LINK, PublicNetwork, PublicPort
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.node.primitives.network import MachinePort, NetworkPrimitive
from zgrid.node.primitives.publicip import IpPrimitive
from zgrid.node.primitives.vm import VirtualMachines
from zgrid.node.primitives.zdbenv import container_environment
from zgrid.node.rootfs import is_mount_point, lower_is_dead, mount_overlay, unmount
from zgrid.node.runtime.base import BindMount, ContainerSpec, ContainerStatus, Runtime
from zgrid.node.runtime.qemu import VMStatus
from zgrid.types import ZMachine, min_root_size

__all__ = ["MachineChange", "ZMachinePrimitive"]

log = logging.getLogger(__name__)

MachineChange = Callable[[str, str, str, Mapping[str, Any]], Awaitable[None]]
"""Called as ``(workload_id, state, message, data)`` when a machine changes by itself."""

_RELEASED = ".released"  # one file per image: when its last machine went
IMAGE_KEEP = 600.0  # seconds an unused image stays mounted
_STABLE_AFTER = 60.0  # seconds a restarted machine must run before it is ok again
_WATCH_INTERVAL = 1.0
_TAIL = 2048
_UNPLUGGED = "its private or public network link is not there"
_PUBLIC_MARKER = "public"  # in the machine's directory: it has a pub link to remove
PUBLIC_MTU = 1500


def root_disk_id(ref: WorkloadRef) -> str:
    """The machine's own root volume; '.' never appears in a workload name."""
    return f"{ref.id}.root"


class ZMachinePrimitive:
    """Containers from flists; also watches them and reports exits and OOM kills."""

    def __init__(
        self,
        root: Path,
        *,
        disks: DiskPool,
        flists: FlistManager,
        network: PlanetaryNetwork,
        runtime: Runtime,
        logs: LogChannel,
        addresses: Callable[[], list[str]],
        on_change: MachineChange | None = None,
        hub_url: str | None = None,
        zdb_port: int | None = None,
        planetary_address: Callable[[], str] | None = None,
        vms: VirtualMachines | None = None,
        networks: NetworkPrimitive | None = None,
        public: PublicNetwork | None = None,
        ips: IpPrimitive | None = None,
    ) -> None:
        """``zdb_port`` and ``planetary_address`` (the node's yggdrasil address) tell each
        machine where its deployment's zdb namespaces are (zdbenv.py); without a port the
        machine gets no ``ZDB_*`` variables, without an address no ``ZDB_*_HOST``."""
        self._root = root
        self._disks = disks
        self._flists = flists
        self._network = network
        self._runtime = runtime
        self._logs = logs
        self._addresses = addresses
        self.on_change = on_change  # set once the engine exists (it needs the primitives)
        self._hub_url = hub_url.rstrip("/") if hub_url else None
        self._zdb_port = zdb_port
        self._planetary_address = planetary_address
        self._vms = vms  # None: this node runs containers only
        self._networks = networks  # None: this node has no private networks
        self._public = public  # None: this node has no public network
        self._ips = ips
        self._seen: dict[str, tuple[float, int]] = {}  # id -> (last exit, OOM kills) reported
        self._unstable: dict[str, float] = {}  # workload id -> time of its last exit

    @property
    def disks(self) -> DiskPool:
        return self._disks

    def _dir(self, ref: WorkloadRef) -> Path:
        return self._root / ref.id

    # -- the Primitive interface ---------------------------------------------------------------

    async def provision(self, item: Provisioning) -> ResultData:
        machine = item.workload.data
        assert isinstance(machine, ZMachine)
        ref = item.ref
        if machine.mode == "vm" and self._vms is None:
            raise ProvisionError("this node cannot run virtual machines (qemu is not installed)")
        if machine.network.interfaces and self._networks is None:
            raise ProvisionError("this node cannot join private networks (no wireguard-go)")
        if machine.network.public_ip and (self._public is None or self._ips is None):
            raise ProvisionError(
                "this node has no public network (its farmer gave it no --public-interface)"
            )
        lower = await self._flists.lower(self._flist_url(machine.flist), pinned=self._pinned(ref))
        cpu, memory = machine.compute_capacity.cpu, machine.compute_capacity.memory
        if machine.mode == "vm":
            return await self._provision_vm(item, machine, lower)
        volume = await self._disks.create(
            root_disk_id(ref), max(machine.size, min_root_size(cpu, memory)), kind="rootfs"
        )
        rootfs = self._dir(ref) / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        (self._dir(ref) / "flist").write_text(lower.hash)  # keeps the shared image mounted
        if not is_mount_point(rootfs) or await lower_is_dead(rootfs):
            # A root taken away (by hand, or its image mount died): the container still
            # runs on the old one, so it starts again on a fresh overlay.
            if (await self._runtime.status(ref.id)).state != "absent":
                await self._runtime.stop(ref.id)
            await unmount(rootfs)
        await mount_overlay(lower.path, volume, rootfs)
        mounts = self._mounts(item, machine)
        env = container_environment(
            item,
            lower.config.env,
            zdb_port=self._zdb_port,
            node_address=self._node_address(machine),
        )
        ssh_key = env.get("SSH_KEY", "")
        if ssh_key:
            _authorize(rootfs, ssh_key)
        args = _arguments(machine.entrypoint, lower.config.entrypoint, lower.config.cmd)
        attachment = await self._network.attach(
            ref, contract_key=str(ref.contract_id), planetary=machine.network.planetary
        )
        ports = await self._plug_private(ref, machine, netns=attachment.netns)
        public = await self._plug_public(ref, machine, netns=attachment.netns)
        output = self._dir(ref) / "output.log"
        access = await self._logs.open(ref.id, output)
        spec = ContainerSpec(
            id=ref.id,
            rootfs=rootfs,
            args=tuple(args),
            env=tuple(sorted(env.items())),
            cwd=lower.config.workdir or "/",
            hostname=ref.name.replace("_", "-")[:63],
            cpu=cpu,
            memory=memory,
            mounts=tuple(mounts),
            netns=attachment.netns_path,
            log_path=output,
        )
        before = await self._runtime.status(ref.id)
        self._first_seen(ref.id, before)
        try:
            status = await self._runtime.start(spec)
        except RuntimeFailure as exc:
            raise ProvisionError(f"the container cannot start: {exc}") from exc
        return {
            **self._result(attachment, lower, access),
            **_private_result(ports),
            **_public_result(public),
            "restarts": status.restarts,
        }

    async def _plug_public(
        self, ref: WorkloadRef, machine: ZMachine, *, netns: str | None
    ) -> PublicPort | None:
        """The machine on the node's public network with the addresses its ip workload got
        (a marker written first, so a removal knows to unplug it)."""
        if not machine.network.public_ip:
            return None
        assert self._public is not None and self._ips is not None
        ip_ref = WorkloadRef(ref.twin_id, ref.contract_id, machine.network.public_ip)
        addresses = self._ips.addresses(ip_ref)
        if not addresses:
            raise ProvisionError(
                f"ip workload {ip_ref.name!r} has no address yet (see its own result)"
            )
        self._dir(ref).mkdir(parents=True, exist_ok=True)
        (self._dir(ref) / _PUBLIC_MARKER).touch()
        return await self._public.plug(ref.id, addresses, netns=netns)

    async def _plug_private(
        self, ref: WorkloadRef, machine: ZMachine, *, netns: str | None
    ) -> list[MachinePort]:
        """The machine on each private network it names (a network workload of its own
        deployment); the links are written down first, so a removal finds them."""
        if not machine.network.interfaces:
            return []
        assert self._networks is not None
        networks = self._networks
        plan = [
            (WorkloadRef(ref.twin_id, ref.contract_id, interface.network), interface.ip)
            for interface in machine.network.interfaces
        ]
        links_file = self._dir(ref) / "private.json"
        self._dir(ref).mkdir(parents=True, exist_ok=True)
        names = [networks.port_name(network, ref) for network, _ in plan]
        write_atomic(links_file, json.dumps(names).encode(), sync=False)
        return [await networks.plug(network, ref, ip, netns=netns) for network, ip in plan]

    def _private_links(self, ref: WorkloadRef) -> list[str]:
        try:
            names = json.loads((self._dir(ref) / "private.json").read_text())
        except (OSError, ValueError):
            return []
        return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []

    async def _provision_vm(
        self, item: Provisioning, machine: ZMachine, lower: Lower
    ) -> ResultData:
        assert self._vms is not None
        ref = item.ref
        cpu, memory = machine.compute_capacity.cpu, machine.compute_capacity.memory
        self._dir(ref).mkdir(parents=True, exist_ok=True)
        (self._dir(ref) / "flist").write_text(lower.hash)  # keeps the shared image mounted
        env = container_environment(
            item, {}, zdb_port=self._zdb_port, node_address=self._node_address(machine)
        )
        attachment = await self._network.attach(
            ref, contract_key=str(ref.contract_id), planetary=machine.network.planetary, tap=True
        )
        ports = await self._plug_private(ref, machine, netns=None)
        public = await self._plug_public(ref, machine, netns=None)
        output = self._dir(ref) / "output.log"
        access = await self._logs.open(ref.id, output)
        before = await self._vms.runtime.status(ref.id)
        self._first_seen(ref.id, before)
        facts = await self._vms.provision(
            item,
            lower,
            root_disk=root_disk_id(ref),
            root_size=max(machine.size, min_root_size(cpu, memory)),
            network=attachment,
            env=env,
            output=output,
            private=[*ports, *_public_cards(public)],
        )
        return {
            **self._result(attachment, lower, access),
            **_private_result(ports),
            **_public_result(public),
            **facts,
        }

    def _result(self, attachment: Attachment, lower: Lower, access: LogAccess) -> ResultData:
        """What every machine's result says, whichever its mode."""
        return {
            "planetary_ip": attachment.ipv6 or "",
            "flist_hash": lower.hash,
            "logs": {
                "ips": self._addresses(),
                "port": access.port,
                "namespace": access.namespace,
                "password": access.password,
            },
            "exit_code": None,
        }

    def _first_seen(self, workload_id: str, before: ContainerStatus | VMStatus) -> None:
        """Exits from before the node first made the machine are not reported as new."""
        if workload_id not in self._seen and not self._reported_path(workload_id).exists():
            self._remember(workload_id, (_last_exit(before), before.oom_kills))

    async def recover(self) -> list[str]:
        """After the daemon restarted: find its containers again (they outlived it) and go
        on copying their output to their logs, which only the daemon does."""
        found = await self._runtime.recover()
        ids = await self._runtime.containers()
        if self._vms is not None:
            found += await self._vms.runtime.recover()
            ids += await self._vms.runtime.vms()
        for container_id in ids:
            machine = self._root / container_id
            if not machine.is_dir():
                continue
            try:
                await self._logs.open(container_id, machine / "output.log")
            except NodeError as exc:
                log.warning("cannot follow the output of %s again: %s", container_id, exc)
        return found

    def _node_address(self, machine: ZMachine) -> str | None:
        """Where a machine reaches the node's own services: its yggdrasil address, for a
        machine with planetary only (one without has nothing but loopback)."""
        if not machine.network.planetary or self._planetary_address is None:
            return None
        return self._planetary_address()

    def _pinned(self, ref: WorkloadRef) -> str | None:
        """The image a machine first got: it keeps it across restarts and repairs."""
        try:
            return (self._dir(ref) / "flist").read_text().strip() or None
        except OSError:
            return None

    def _flist_url(self, flist: str) -> str:
        """A URL as given; ``<twin>/<name>`` is the node's hub's published flist."""
        if flist.startswith(("http://", "https://")):
            return flist
        if self._hub_url is None:
            raise ProvisionError(
                f"flist {flist!r} is not a URL and this node has no hub to look names up on"
            )
        return f"{self._hub_url}/flists/{flist.lstrip('/')}"

    def _mounts(self, item: Provisioning, machine: ZMachine) -> list[BindMount]:
        mounts = []
        for mount in machine.mounts:
            disk = WorkloadRef(item.ref.twin_id, item.ref.contract_id, mount.name)
            if not self._disks.is_mounted(disk.id):
                raise ProvisionError(f"disk {mount.name!r} is not ready (see its own result)")
            mounts.append(BindMount(self._disks.path(disk.id), mount.mountpoint))
        return mounts

    async def deprovision(self, ref: WorkloadRef) -> None:
        self._release_image(ref)
        await self._runtime.stop(ref.id)
        if self._vms is not None:
            await self._vms.remove(ref)
        await self._logs.close(ref.id)
        if self._networks is not None:
            await self._networks.unplug(self._private_links(ref))
        if self._public is not None:
            await self._public.unplug(ref.id)
        await self._network.detach(ref)
        rootfs = self._dir(ref) / "rootfs"
        await unmount(rootfs)
        await self._disks.remove(root_disk_id(ref))
        shutil.rmtree(self._dir(ref), ignore_errors=True)
        self._seen.pop(ref.id, None)
        self._unstable.pop(ref.id, None)

    async def sweep_flists(self, *, keep_for: float = IMAGE_KEEP) -> list[str]:
        """Unmount the images no machine has used for ``keep_for`` seconds.

        An image stays mounted a while after its last machine went, so the next machine
        of a popular image starts without mounting it again (its blocks are cached on
        disk either way). Returns the hashes unmounted.
        """
        in_use = self._lowers_in_use()
        released = self._root / _RELEASED
        recent: set[str] = set()
        now = time.time()
        for marker in released.glob("*") if released.is_dir() else ():
            with contextlib.suppress(OSError):
                if now - marker.stat().st_mtime < keep_for:
                    recent.add(marker.name)
                else:
                    marker.unlink()
        return await self._flists.sweep(in_use | recent)

    def _release_image(self, ref: WorkloadRef) -> None:
        image = self._pinned(ref)
        if image:
            released = self._root / _RELEASED
            released.mkdir(parents=True, exist_ok=True)
            (released / image).touch()

    def _lowers_in_use(self) -> set[str]:
        hashes: set[str] = set()
        for marker in self._root.glob("*/flist"):
            with contextlib.suppress(OSError):
                hashes.add(marker.read_text().strip())
        return hashes

    async def inspect(self, ref: WorkloadRef) -> Observed:
        if self._vms is not None and self._vms.is_vm(ref):
            observed = await self._vms.inspect(ref)
            if observed.exists and not await self._network.inspect(ref):
                return Observed(
                    exists=True, healthy=False, detail="its network is not as it should be"
                )
            if observed.exists and not await self._private_plugged(ref):
                return Observed(exists=True, healthy=False, detail=_UNPLUGGED)
            return observed
        status = await self._runtime.status(ref.id)
        if status.state == "absent":
            return Observed(exists=False, detail="its container is not there")
        if status.state == "stopped":
            return Observed(exists=True, healthy=False, detail="its container is stopped")
        rootfs = self._dir(ref) / "rootfs"
        if not is_mount_point(rootfs):
            return Observed(exists=True, healthy=False, detail="its root filesystem is not mounted")
        if await lower_is_dead(rootfs):
            return Observed(exists=True, healthy=False, detail="its image mount died")
        if not await self._network.inspect(ref):
            return Observed(exists=True, healthy=False, detail="its network is not as it should be")
        if not await self._private_plugged(ref):
            return Observed(exists=True, healthy=False, detail=_UNPLUGGED)
        return Observed(exists=True)

    async def _private_plugged(self, ref: WorkloadRef) -> bool:
        if self._networks is not None and not await self._networks.plugged(
            self._private_links(ref)
        ):
            return False
        if self._public is not None and (self._dir(ref) / _PUBLIC_MARKER).exists():
            return await self._public.plugged(ref.id)
        return True

    async def present(self) -> set[str]:
        found = set(await self._runtime.containers())
        if self._vms is not None:
            found |= set(await self._vms.runtime.vms())
        found |= await self._network.present()
        if self._root.is_dir():
            found |= {
                path.name
                for path in self._root.iterdir()
                if path.is_dir() and not path.name.startswith(".")
            }
        return found

    async def pause(self, ref: WorkloadRef) -> None:
        if self._vms is not None and self._vms.is_vm(ref):
            await self._vms.runtime.pause(ref.id)
        else:
            await self._runtime.pause(ref.id)

    async def resume(self, ref: WorkloadRef) -> None:
        if self._vms is not None and self._vms.is_vm(ref):
            await self._vms.runtime.resume(ref.id)
        else:
            await self._runtime.resume(ref.id)

    # -- watching ------------------------------------------------------------------------------

    async def watch(self, interval: float = _WATCH_INTERVAL) -> None:
        """Report each exit and OOM kill of every machine, forever."""
        while True:
            await asyncio.sleep(interval)
            try:
                ids = await self._runtime.containers()
            except NodeError as exc:
                log.warning("cannot list containers: %s", exc)
                continue
            for container_id in ids:
                try:
                    await self._check(container_id, await self._runtime.status(container_id))
                except NodeError as exc:
                    log.warning("cannot inspect %s: %s", container_id, exc)
            vms = self._vms.runtime if self._vms is not None else None
            for vm_id in await vms.vms() if vms is not None else []:
                try:
                    assert vms is not None
                    await self._check(vm_id, await vms.status(vm_id))
                except NodeError as exc:
                    log.warning("cannot inspect %s: %s", vm_id, exc)

    def _reported_path(self, workload_id: str) -> Path:
        return self._root / workload_id / "reported.json"

    def _reported(self, workload_id: str, status: ContainerStatus | VMStatus) -> tuple[float, int]:
        """The last exit and OOM count already reported, kept on disk across daemon restarts
        (an exit while the daemon was down is reported when it is back)."""
        if workload_id in self._seen:
            return self._seen[workload_id]
        try:
            document = json.loads(self._reported_path(workload_id).read_text())
            return float(document["last_exit"]), int(document["oom_kills"])
        except (OSError, ValueError, KeyError, TypeError):
            return _last_exit(status), status.oom_kills

    def _remember(self, workload_id: str, seen: tuple[float, int]) -> None:
        if self._seen.get(workload_id) == seen:
            return
        self._seen[workload_id] = seen
        path = self._reported_path(workload_id)
        if path.parent.is_dir():
            document = {"last_exit": seen[0], "oom_kills": seen[1]}
            write_atomic(path, json.dumps(document).encode(), sync=False)

    async def _check(self, workload_id: str, status: ContainerStatus | VMStatus) -> None:
        if self.on_change is None:
            return
        last_seen, ooms = self._reported(workload_id, status)
        self._remember(workload_id, (_last_exit(status), status.oom_kills))
        memory = status.spec.memory if status.spec is not None else 0
        if status.exits and _last_exit(status) > last_seen:
            last = status.exits[-1]
            self._unstable[workload_id] = time.time()
            if isinstance(status, VMStatus):
                what, why = "VM", _vm_end(last.code, last.output_tail)
            else:
                what = "container"
                why = (
                    "killed by the OOM killer"
                    if last.oom_killed
                    else f"exited with code {last.code}"
                )
            restart = f"; restarted {status.restarts} time(s)" if status.restarts else ""
            tail = last.output_tail[-_TAIL:]
            await self.on_change(
                workload_id,
                "error",
                f"the {what} {why}{restart}; last output: {tail[-300:].strip()!r}",
                {"exit_code": last.code, "output_tail": tail, "restarts": status.restarts},
            )
        elif status.oom_kills > ooms:
            await self.on_change(
                workload_id,
                "ok",
                f"the OOM killer killed {status.oom_kills} process(es) of the container "
                f"(memory limit {human_bytes(memory)})",
                {"oom_kills": status.oom_kills},
            )
        elif (
            workload_id in self._unstable
            and status.state == "running"
            and time.time() - self._unstable[workload_id] > _STABLE_AFTER
        ):
            del self._unstable[workload_id]
            await self.on_change(
                workload_id,
                "ok",
                f"running again after {status.restarts} restart(s)",
                {"restarts": status.restarts},
            )


def _vm_end(code: int, console: str) -> str:
    """How a VM's qemu ended, in the guest's words where its console says."""
    if "Kernel panic" in console:
        return "panicked"
    if code == 0:
        return "powered off"
    if code > 128:
        return f"stopped: qemu was killed by signal {code - 128}"
    return f"stopped: qemu exited with code {code}"


def _last_exit(status: ContainerStatus | VMStatus) -> float:
    return status.exits[-1].at if status.exits else 0.0


def _arguments(
    entrypoint: str, image_entrypoint: tuple[str, ...], image_cmd: tuple[str, ...]
) -> list[str]:
    if entrypoint:
        try:
            args = shlex.split(entrypoint)
        except ValueError as exc:
            raise ProvisionError(
                f"the entrypoint {entrypoint!r} cannot be split into words: {exc}"
            ) from exc
        if args:
            return args
    args = [*image_entrypoint, *image_cmd]
    if not args:
        raise ProvisionError("the workload names no entrypoint and the flist has none either")
    return args


def _authorize(rootfs: Path, key: str) -> None:
    """SSH_KEY becomes /root/.ssh/authorized_keys inside the machine.

    The root comes from an flist anyone can publish, so no symlink on the way is
    followed: a link there could otherwise point the write at the node's own files.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(rootfs, flags)
    try:
        for part in ("root", ".ssh"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                raise ProvisionError(
                    f"cannot place SSH_KEY: /{'root' if part == 'root' else 'root/.ssh'} in the "
                    f"flist is not a plain directory ({exc.strerror})"
                ) from exc
            os.close(fd)
            fd = inner
        os.fchmod(fd, 0o700)
        try:
            os.unlink("authorized_keys", dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ProvisionError(f"cannot place SSH_KEY: {exc.strerror}") from exc
        target = os.open(
            "authorized_keys",
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
            0o600,
            dir_fd=fd,
        )
        with os.fdopen(target, "w") as handle:
            handle.write(key.strip() + "\n")
    finally:
        os.close(fd)


def _public_result(port: PublicPort | None) -> ResultData:
    """A machine's public addresses, as the ip workload gave them."""
    if port is None:
        return {}
    v4 = next((a.cidr for a in port.addresses if ":" not in a.cidr), "")
    v6 = next((a.cidr for a in port.addresses if ":" in a.cidr), "")
    return {"public_ip": v4, "public_ip6": v6}


def _public_cards(port: PublicPort | None) -> list[MachinePort]:
    """A VM's public card as the guest configures a card: one line per address, each with
    its default route through the farm's gateway."""
    if port is None:
        return []
    cards = []
    for address in port.addresses:
        ip, prefix = address.cidr.split("/", 1)
        cards.append(
            MachinePort(
                network=PUBLIC_LINK,
                ip=ip,
                prefix=int(prefix),
                gateway=address.gateway,
                ip_range="default",
                host_link=port.host_link,
                mac=port.mac,
                mtu=PUBLIC_MTU,
            )
        )
    return cards


def _private_result(ports: list[MachinePort]) -> ResultData:
    """A machine's private addresses: ``ip`` (the first, as the grid names it) and all."""
    if not ports:
        return {}
    return {
        "ip": ports[0].ip,
        "private": [{"network": port.network, "ip": port.ip} for port in ports],
    }
