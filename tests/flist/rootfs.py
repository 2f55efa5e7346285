"""A busybox root filesystem with every kind of entry, and a deep comparison of two trees."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tests.conftest import require_tool

BIG_SIZE = 3 * 1024 * 1024
APPLETS = ("sh", "ls", "cat", "echo", "md5sum", "stat", "wc")


def build_busybox_root(root: Path) -> None:
    """busybox-static with applet symlinks, a device node, a fifo, a hardlink, a 3 MiB file,
    odd modes and owners, and fixed mtimes. Needs root (mknod, chown)."""
    busybox = require_tool("busybox")
    for directory in ("bin", "dev", "etc", "tmp", "data/empty", "data/deep/er/still"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    os.link(root / "bin/busybox", root / "bin/busybox.hard")
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "data/fifo", 0o640)
    (root / "data/big").write_bytes(os.urandom(BIG_SIZE))
    (root / "data/exact").write_bytes(b"x" * (512 * 1024))
    (root / "data/empty.txt").write_bytes(b"")
    (root / "data/ünïcode name").write_text("named\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/secret").write_text("s3cret\n")
    (root / "data/deep/er/still/leaf").write_text("leaf\n")
    (root / "data/link-abs").symlink_to("/etc/passwd")
    (root / "data/deep/link-up").symlink_to("../../etc/passwd")
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "etc/secret", 0o600)
    os.chmod(root / "data/exact", 0o4751)
    os.chmod(root / "data/empty", 0o2700)
    os.chown(root / "etc/secret", 1234, 5678)
    os.chown(root / "data/deep", 4321, 100)
    os.chown(root / "data/link-abs", 77, 88, follow_symlinks=False)
    stamp = 1_600_000_000
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        stamp += 3600
        os.utime(path, (stamp, stamp), follow_symlinks=False)
    os.utime(root, (stamp, stamp))


def describe(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its type, mode, owner, mtime, size and content digest."""
    found: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        rel = "/" + str(path.relative_to(root)) if path != root else "/"
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            content: object = path.read_bytes()
            inodes.setdefault(st.st_ino, []).append(rel)
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            content = st.st_rdev
        else:
            content = None
        mtime = int(st.st_mtime)
        size = st.st_size if not stat.S_ISDIR(st.st_mode) else None
        found[rel] = (st.st_mode, st.st_uid, st.st_gid, mtime, size, content)
    groups = sorted(sorted(paths) for paths in inodes.values() if len(paths) > 1)
    found["<hardlinks>"] = tuple(tuple(group) for group in groups)
    return found


def assert_same_tree(source: Path, copy: Path) -> None:
    expected, actual = describe(source), describe(copy)
    assert sorted(actual) == sorted(expected)
    for path, value in expected.items():
        assert actual[path] == value, f"{path} differs"
