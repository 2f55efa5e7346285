"""The default guest of a virtual machine: the machine's own Debian kernel and an initramfs
of zgrid's, with busybox, the drivers a zgrid VM needs and the first process (guest_init.sh).

A VM whose flist carries no kernel boots this kernel; the initramfs mounts the flist over
9p and hands over to the entrypoint or the image's init. The initramfs is built once per
kernel, busybox and init script, into the node's cache, and is found there again.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import shutil
import stat
import subprocess
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import zstandard

from zgrid.atomic import write_atomic

__all__ = [
    "GUEST_MODULES",
    "GuestKernel",
    "GuestUnavailable",
    "build_initramfs",
    "find_kernel",
    "unpack_kernel",
]

GUEST_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "9pnet_virtio",
    "9p",
    "overlay",
    "crc32c_generic",
    "ext4",
    "virtio_rng",
)
"""What the first process needs of the kernel; their dependencies come along (modules.dep)."""

_BOOT = Path("/boot")
_MODULES = Path("/lib/modules")


class GuestUnavailable(Exception):
    """No default guest can be made on this machine (no kernel, modules or busybox)."""


@dataclass(frozen=True, slots=True)
class GuestKernel:
    version: str
    kernel: Path  # the bzImage
    modules: Path  # /lib/modules/<version>


def _version_key(version: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version)]


def find_kernel(boot: Path = _BOOT, modules: Path = _MODULES) -> GuestKernel:
    """The newest kernel in ``boot`` whose modules are installed (Debian's linux-image-amd64)."""
    found = []
    for image in boot.glob("vmlinuz-*"):
        version = image.name.removeprefix("vmlinuz-")
        if (modules / version / "modules.dep").is_file():
            found.append(GuestKernel(version, image, modules / version))
    if not found:
        raise GuestUnavailable(
            f"no guest kernel: no {boot}/vmlinuz-* with its modules in {modules}"
            " (install Debian's linux-image-amd64)"
        )
    return max(found, key=lambda kernel: _version_key(kernel.version))


def _module_order(kernel: GuestKernel, wanted: tuple[str, ...]) -> list[str]:
    """Paths (relative to the modules dir) of ``wanted`` and their dependencies, each after
    every module it needs; a module built into the kernel is simply not there."""
    dependencies: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (kernel.modules / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        dependencies[path] = needs.split()
        name = Path(path).name.split(".ko")[0]
        by_name[name] = path
        by_name[name.replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for need in dependencies.get(path, ()):
            visit(need)
        order.append(path)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
    return order


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


class _Cpio:
    """An uncompressed ``newc`` archive, the format the kernel unpacks as its initramfs."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._inode = 1

    def _add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = [self._inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self._inode += 1
        header = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
        self._parts.append(header + encoded + b"\0" * (-(len(header) + len(encoded)) % 4))
        self._parts.append(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._add(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._add(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._add(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def bytes(self) -> bytes:
        self._inode = 0
        self._add("TRAILER!!!", 0)
        return b"".join(self._parts)


def _busybox() -> tuple[Path, list[str]]:
    found = shutil.which("busybox")
    if found is None:
        raise GuestUnavailable("no busybox for the guest (install Debian's busybox-static)")
    path = Path(found).resolve()
    head = path.read_bytes()[:8192]
    if b"ld-linux" in head or b"/lib64/ld" in head:
        raise GuestUnavailable(f"{path} is linked dynamically: the guest needs busybox-static")
    listed = subprocess.run(
        [str(path), "--list"], capture_output=True, text=True, timeout=30, check=False
    )
    applets = [name for name in listed.stdout.split() if name and "/" not in name]
    if listed.returncode != 0 or "sh" not in applets:
        raise GuestUnavailable(f"{path} --list failed: {listed.stderr.strip()}")
    return path, applets


def build_initramfs(cache: Path, kernel: GuestKernel) -> Path:
    """The initramfs for ``kernel`` (made once; the same inputs find the same file)."""
    busybox, applets = _busybox()
    init = resources.files("zgrid.node.runtime").joinpath("guest_init.sh").read_bytes()
    modules = _module_order(kernel, GUEST_MODULES)
    digest = hashlib.blake2b(digest_size=12)
    for part in (kernel.version.encode(), busybox.read_bytes(), init, "\n".join(modules).encode()):
        digest.update(hashlib.sha256(part).digest())
    target = cache / f"initramfs-{kernel.version}-{digest.hexdigest()}.cpio"
    if target.is_file():
        return target
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "lib", "lib/modules", "zconf", "lower"):
        archive.directory(directory)
    for directory in ("rw", "newroot", "tmp", "sbin"):
        archive.directory(directory)
    archive.char_device("dev/console", 5, 1)
    archive.char_device("dev/null", 1, 3)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets:
        if applet != "busybox":
            archive.symlink(f"bin/{applet}", "busybox")
    archive.file("init", init, 0o755)
    order = []
    for relative in modules:
        name = Path(relative).name.split(".ko")[0] + ".ko"
        archive.file(f"lib/modules/{name}", _module_bytes(kernel.modules / relative))
        order.append(name)
    archive.file("lib/modules/load.order", ("\n".join(order) + "\n").encode())
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(target, archive.bytes(), mode=0o644)
    for stale in cache.glob(f"initramfs-{kernel.version}-*.cpio"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


_PAYLOADS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b\x08\x00", "gzip"),
)


def unpack_kernel(cache: Path, kernel: GuestKernel) -> Path:
    """The kernel's ELF image (vmlinux), taken out of its compressed bzImage once.

    qemu boots an ELF kernel through its PVH entry point, which skips the kernel's own
    decompression: under TCG that alone takes seconds of every boot.
    """
    target = cache / f"vmlinux-{kernel.version}"
    if target.is_file():
        return target
    data = kernel.kernel.read_bytes()
    for magic, codec in _PAYLOADS:
        offset = data.find(magic)
        while offset >= 0:
            elf = _decompress(codec, data[offset:])
            if elf is not None and elf[:4] == b"\x7fELF":
                cache.mkdir(parents=True, exist_ok=True)
                write_atomic(target, elf, mode=0o644)
                return target
            offset = data.find(magic, offset + 1)
    raise GuestUnavailable(f"cannot find the ELF kernel inside {kernel.kernel}")


def _decompress(codec: str, data: bytes) -> bytes | None:
    try:
        if codec == "xz":
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
        if codec == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except (OSError, ValueError, EOFError, lzma.LZMAError, zlib.error, zstandard.ZstdError):
        return None  # not this payload
