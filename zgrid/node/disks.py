"""The node's disks: sparse ext4 images, loop-mounted, whose size is the workload's limit.

Layout under the pool's root: ``images/<id>.img`` (the sparse image), ``mounts/<id>``
(where it is mounted), ``records/<id>.json`` (which kind of workload made it and the size
it was last made at, and whether it is lent to a virtual machine). Loop devices come from ``mount -o loop``, which sets autoclear:
the device goes away with the last unmount, and a ``mount`` killed before it mounted
leaves nothing attached. Every step is safe to repeat after a crash between any two.

A disk lent to a virtual machine (``lend``) is not mounted on the node: the guest mounts
the image itself, and two kernels must never mount one ext4 at once. It stays lent,
across node restarts, until ``give_back``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.node.errors import CapacityExceeded, ProvisionError, SystemCommandError
from zgrid.node.naming import unique_name
from zgrid.node.system import run_command

__all__ = ["MIN_DISK_SIZE", "DiskPool"]

MIN_DISK_SIZE = 4 << 20  # ext4 with a journal needs a few MiB of its own
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
_MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1"]


def _unescape(field: str) -> str:
    """A path of /proc/self/mountinfo: space, tab, newline and backslash are octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _mount_points() -> set[str]:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return set()
    return {_unescape(line.split()[4]) for line in text.splitlines() if len(line.split()) > 4}


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


class DiskPool:
    """Sized ext4 disks under ``root``; ``scope`` (unique per node) names their labels."""

    def __init__(self, root: Path, *, scope: str) -> None:
        self.root = root
        self.scope = scope
        self._images = root / "images"
        self._mounts = root / "mounts"
        self._records = root / "records"
        self._locks: dict[str, asyncio.Lock] = {}

    # -- paths ----------------------------------------------------------------------------

    def _check_id(self, disk_id: str) -> None:
        if not _ID.match(disk_id) or disk_id in (".", ".."):
            raise ProvisionError(
                f"invalid disk id {disk_id!r}: letters, digits, '_', '.' and '-' only"
            )

    def path(self, disk_id: str) -> Path:
        """Where the disk is (or would be) mounted."""
        self._check_id(disk_id)
        return self._mounts / disk_id

    def image(self, disk_id: str) -> Path:
        self._check_id(disk_id)
        return self._images / f"{disk_id}.img"

    def _record_path(self, disk_id: str) -> Path:
        return self._records / f"{disk_id}.json"

    def _lock(self, disk_id: str) -> asyncio.Lock:
        return self._locks.setdefault(disk_id, asyncio.Lock())

    # -- records --------------------------------------------------------------------------

    def _record(self, disk_id: str) -> dict[str, object] | None:
        try:
            loaded = json.loads(self._record_path(disk_id).read_text())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def _write_record(self, disk_id: str, kind: str, size: int, *, lent: bool = False) -> None:
        self._records.mkdir(parents=True, exist_ok=True)
        record: dict[str, object] = {"kind": kind, "size": size}
        if lent:
            record["lent"] = True
        data = json.dumps(record, sort_keys=True).encode()
        write_atomic(self._record_path(disk_id), data, mode=0o600)

    def kind(self, disk_id: str) -> str | None:
        """The kind the disk was made for (``create(..., kind=)``), None if unknown."""
        record = self._record(disk_id)
        kind = record.get("kind") if record else None
        return kind if isinstance(kind, str) else None

    def is_lent(self, disk_id: str) -> bool:
        """Whether the disk is lent to a virtual machine (and so not mounted here)."""
        record = self._record(disk_id)
        return bool(record and record.get("lent") is True)

    # -- queries --------------------------------------------------------------------------

    async def ids(self, kind: str | None = None) -> set[str]:
        """Every disk on the pool (also half-made or half-removed ones), or those of ``kind``."""
        found: set[str] = set()
        for directory, suffix in ((self._images, ".img"), (self._records, ".json")):
            with contextlib.suppress(FileNotFoundError):
                for entry in directory.iterdir():
                    if entry.name.endswith(suffix) and _ID.match(entry.name[: -len(suffix)]):
                        found.add(entry.name[: -len(suffix)])
        if kind is None:
            return found
        return {disk_id for disk_id in found if self.kind(disk_id) == kind}

    def is_mounted(self, disk_id: str) -> bool:
        return str(self.path(disk_id)) in _mount_points()

    def size(self, disk_id: str) -> int | None:
        """The size the disk was made at (bytes), None when it does not exist."""
        record = self._record(disk_id)
        recorded = record.get("size") if record else None
        try:
            on_disk = self.image(disk_id).stat().st_size
        except FileNotFoundError:
            return None
        return max(on_disk, recorded if isinstance(recorded, int) else 0)

    async def used_bytes(self, disk_id: str) -> int:
        """Bytes used inside the mounted filesystem (0 when not mounted)."""
        if not self.is_mounted(disk_id):
            return 0
        stats = os.statvfs(self.path(disk_id))
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize

    # -- create / grow --------------------------------------------------------------------

    async def create(self, disk_id: str, size: int, *, kind: str = "disk") -> Path:
        """Make (or find, remount, grow) the disk and return its mountpoint."""
        self._check_id(disk_id)
        if not isinstance(size, int) or size < MIN_DISK_SIZE:
            raise ProvisionError(
                f"disk size must be at least {_mib(MIN_DISK_SIZE)}, got {size!r} bytes"
            )
        async with self._lock(disk_id):
            record = self._record(disk_id)
            if record is not None and record.get("kind") not in (kind, None):
                raise ProvisionError(
                    f"disk {disk_id} already exists as a {record.get('kind')}, not a {kind}"
                )
            image = self.image(disk_id)
            current = self.size(disk_id)
            if current is not None and size < current:
                raise ProvisionError(
                    f"disk {disk_id} is {_mib(current)}; shrinking it to {_mib(size)} is refused"
                    " (it could destroy data)"
                )
            if record is None:
                self._write_record(disk_id, kind, size if current is None else current)
            if current is None:
                await self._make_image(disk_id, image, size)
            if record is not None and record.get("lent") is True:
                if current is not None and size > current:
                    raise ProvisionError(
                        f"cannot grow disk {disk_id} to {_mib(size)} while a virtual machine"
                        " uses it (remove the machine first)"
                    )
                return self.path(disk_id)
            await self._mount(disk_id, image)
            recorded = (self._record(disk_id) or {}).get("size")
            if image.stat().st_size < size or recorded != size:
                await self._grow(disk_id, image, size)
                self._write_record(disk_id, kind, size)
            return self.path(disk_id)

    def _check_room(self, needed: int) -> None:
        stats = os.statvfs(self._images)
        free = stats.f_bavail * stats.f_frsize
        if needed > free:
            raise CapacityExceeded(
                f"not enough disk space on the node: asks {_mib(needed)}, {_mib(free)} free"
            )

    async def _make_image(self, disk_id: str, image: Path, size: int) -> None:
        self._images.mkdir(parents=True, exist_ok=True)
        self._check_room(size)
        partial = image.with_name(image.name + ".partial")  # a crash leaves only this
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        try:
            with partial.open("wb") as file:
                file.truncate(size)
            label = unique_name("zg", self.scope, disk_id, length=16)
            await run_command([*_MKFS, "-L", label, str(partial)], timeout=120)
            os.replace(partial, image)
        except OSError as exc:
            raise ProvisionError(f"cannot make disk {disk_id}: {exc.strerror or exc}") from exc
        except SystemCommandError as exc:
            raise ProvisionError(f"cannot make disk {disk_id}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    async def _loops(self, image: Path) -> list[str]:
        """The loop devices backed by ``image`` (``losetup -j``)."""
        out = await run_command(["losetup", "-j", str(image)], check=False)
        return [line.split(":", 1)[0] for line in out.splitlines() if line.startswith("/dev/")]

    async def _detach_stale(self, image: Path) -> None:
        """Loop devices of the image that nothing mounts (left by a crash) are detached."""
        for device in await self._loops(image):
            with contextlib.suppress(SystemCommandError):
                await run_command(["losetup", "-d", device])

    async def _mount(self, disk_id: str, image: Path) -> None:
        if self.is_mounted(disk_id):
            return
        await self._detach_stale(image)
        mountpoint = self.path(disk_id)
        mountpoint.mkdir(parents=True, exist_ok=True)
        try:
            await run_command(["mount", "-o", "loop", str(image), str(mountpoint)])
        except SystemCommandError as exc:
            if self.is_mounted(disk_id):  # another mount of it raced us: that is the one
                return
            raise ProvisionError(f"cannot mount disk {disk_id}: {exc}") from exc

    async def _grow(self, disk_id: str, image: Path, size: int) -> None:
        """Grow the image and its filesystem: online if the kernel allows, else offline."""
        if image.stat().st_size < size:
            self._check_room(size - image.stat().st_size)
            with image.open("r+b") as file:
                file.truncate(size)
        loops = await self._loops(image)
        try:
            for device in loops:
                await run_command(["losetup", "-c", device])
                await run_command(["resize2fs", device], timeout=300)
            if loops:
                return
        except SystemCommandError:
            pass  # online resizing needs CAP_SYS_RESOURCE; offline needs it unmounted
        await self._unmount(disk_id)
        if await self._loops(image):
            await self._mount(disk_id, image)
            raise ProvisionError(
                f"cannot grow disk {disk_id} to {_mib(size)} while it is in use"
                " (online resizing is not available on this node)"
            )
        try:
            await run_command(["e2fsck", "-f", "-p", str(image)], timeout=300, check=False)
            await run_command(["resize2fs", str(image)], timeout=300)
        except SystemCommandError as exc:
            raise ProvisionError(f"cannot grow disk {disk_id}: {exc}") from exc
        finally:
            await self._mount(disk_id, image)

    # -- lending to virtual machines ----------------------------------------------------

    async def lend(self, disk_id: str) -> Path:
        """Unmount the disk from the node for a VM to attach; returns its image."""
        self._check_id(disk_id)
        async with self._lock(disk_id):
            record = self._record(disk_id)
            image = self.image(disk_id)
            if record is None or not image.is_file():
                raise ProvisionError(f"disk {disk_id} does not exist")
            kind = str(record.get("kind") or "disk")
            size = record.get("size")
            self._write_record(
                disk_id, kind, size if isinstance(size, int) else image.stat().st_size, lent=True
            )
            await self._unmount(disk_id)
            await self._detach_stale(image)
            return image

    async def give_back(self, disk_id: str) -> None:
        """The VM is gone: the disk is the node's again, mounted; a missing disk is fine."""
        self._check_id(disk_id)
        async with self._lock(disk_id):
            record = self._record(disk_id)
            image = self.image(disk_id)
            if record is None or record.get("lent") is not True or not image.is_file():
                return
            kind = str(record.get("kind") or "disk")
            size = record.get("size")
            self._write_record(
                disk_id, kind, size if isinstance(size, int) else image.stat().st_size
            )
            await self._mount(disk_id, image)

    # -- remove ---------------------------------------------------------------------------

    async def _unmount(self, disk_id: str) -> None:
        mountpoint = str(self.path(disk_id))
        while mountpoint in _mount_points():
            try:
                await run_command(["umount", mountpoint])
            except SystemCommandError:
                # Busy (a process still uses it): detach it now, the kernel frees it later.
                await run_command(["umount", "-l", mountpoint])

    async def remove(self, disk_id: str) -> None:
        """Unmount, detach and delete the disk; nothing there is not an error."""
        self._check_id(disk_id)
        async with self._lock(disk_id):
            image = self.image(disk_id)
            await self._unmount(disk_id)
            if image.exists():
                await self._detach_stale(image)
            mountpoint = self.path(disk_id)
            if mountpoint.is_dir() and not self.is_mounted(disk_id):
                # Files written there while it was not mounted are not the disk's: go too.
                shutil.rmtree(mountpoint, ignore_errors=True)
            for leftover in (image, image.with_name(image.name + ".partial")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            with contextlib.suppress(FileNotFoundError):
                self._record_path(disk_id).unlink()
        self._locks.pop(disk_id, None)
