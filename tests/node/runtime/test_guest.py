"""The default guest's parts: the initramfs archive, the module order, the ELF kernel, and
paths of an flist resolved as the guest would."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from zgrid.node.primitives.vm import resolve_in
from zgrid.node.runtime.guest import (
    GuestKernel,
    GuestUnavailable,
    _Cpio,
    _module_order,
    build_initramfs,
    find_kernel,
    unpack_kernel,
)


def _entries(archive: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev) of a newc archive, read by its own rules."""
    found: dict[str, tuple[int, bytes, tuple[int, int]]] = {}
    offset = 0
    while True:
        assert archive[offset : offset + 6] == b"070701"
        fields = [int(archive[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        start = offset + 110
        name = archive[start : start + namesize - 1].decode()
        data_at = start + namesize + (-(110 + namesize) % 4)
        data = archive[data_at : data_at + size]
        offset = data_at + size + (-size % 4)
        if name == "TRAILER!!!":
            return found
        found[name] = (mode, data, (fields[9], fields[10]))


def test_the_archive_holds_files_links_and_devices_as_the_kernel_reads_them(
    tmp_path: Path,
) -> None:
    archive = _Cpio()
    archive.directory("bin")
    archive.file("bin/x", b"12345", 0o755)
    archive.symlink("bin/y", "x")
    archive.char_device("dev/console", 5, 1)
    entries = _entries(archive.bytes())
    assert stat.S_ISDIR(entries["bin"][0])
    assert entries["bin/x"][1] == b"12345" and entries["bin/x"][0] & 0o777 == 0o755
    assert stat.S_ISLNK(entries["bin/y"][0]) and entries["bin/y"][1] == b"x"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == (5, 1)
    listed = subprocess.run(
        [require_tool("cpio"), "-it", "--quiet"],
        input=archive.bytes(),
        capture_output=True,
        check=True,
    )
    assert listed.stdout.decode().split() == ["bin", "bin/x", "bin/y", "dev/console"]


def test_modules_come_after_what_they_need(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "modules.dep").write_text(
        "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n"
        "kernel/d-e.ko.xz:\n"
    )
    kernel = GuestKernel("1", tmp_path / "vmlinuz", modules)
    assert _module_order(kernel, ("a", "d_e", "builtin")) == [
        "kernel/c.ko",
        "kernel/b.ko",
        "kernel/a.ko",
        "kernel/d-e.ko.xz",
    ]


def test_no_kernel_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-9.9").write_bytes(b"")  # its modules are not installed
    with pytest.raises(GuestUnavailable, match="linux-image-amd64"):
        find_kernel(tmp_path / "boot", tmp_path / "modules")


def test_the_real_guest_is_an_elf_kernel_and_an_initramfs_with_its_drivers(
    tmp_path: Path,
) -> None:
    try:
        kernel = find_kernel()
    except GuestUnavailable:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no Debian kernel installed")
    require_tool("busybox")
    vmlinux = unpack_kernel(tmp_path, kernel)
    assert vmlinux.read_bytes()[:4] == b"\x7fELF"
    initrd = build_initramfs(tmp_path, kernel)
    assert build_initramfs(tmp_path, kernel) == initrd  # made once
    entries = _entries(initrd.read_bytes())
    order = entries["lib/modules/load.order"][1].decode().split()
    for needed in ("virtio_blk.ko", "9pnet_virtio.ko", "overlay.ko", "ext4.ko", "virtio_net.ko"):
        assert needed in order
    assert order.index("virtio.ko") < order.index("virtio_blk.ko")
    assert entries["init"][1].startswith(b"#!/bin/sh")
    assert stat.S_ISCHR(entries["dev/console"][0])


def test_flist_paths_resolve_inside_the_flist_only(tmp_path: Path) -> None:
    root = tmp_path / "flist"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/init").write_text("")
    (root / "sbin").symlink_to("usr/sbin")
    (root / "usr/sbin/abs").symlink_to("/usr/sbin/init")
    (root / "escape").symlink_to("../../../../etc/passwd")
    (root / "loop").symlink_to("loop")
    assert resolve_in(root, "/sbin/init") == root / "usr/sbin/init"
    assert resolve_in(root, "/sbin/abs") == root / "usr/sbin/init"
    assert resolve_in(root, "/../../sbin/init") == root / "usr/sbin/init"
    assert resolve_in(root, "/escape") is None  # /etc/passwd of the flist: not there
    assert resolve_in(root, "/loop") is None
    assert resolve_in(root, "/boot/vmlinuz") is None
