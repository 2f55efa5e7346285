"""Hostile .fl files: each is refused with a clear error and nothing is written anywhere.

Unpacking runs in-process (``zgrid.cli.main``: the same command, its exit code and its one
line on stderr, without a Python start-up each); the console script unpacks the base flist,
unprivileged, and mounts (a FUSE mount is a process of its own)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.processes import ZGRID, run_zgrid, zgrid_here
from zgrid.flist import (
    BlockFetcher,
    FlistReader,
    FlistWriter,
    Route,
    Router,
    UnsafeFlist,
    check_tree,
    encode_block,
    unpack,
)

DIR = stat.S_IFDIR | 0o755
FILE = stat.S_IFREG | 0o644
LINK = stat.S_IFLNK | 0o777


def base_flist(path: Path, store: Path) -> None:
    """/etc/passwd (one block), /etc/link -> passwd, /tmp."""
    block = encode_block(b"root:x:0:0\n")
    (store / block.id.hex()[:2]).mkdir(parents=True, exist_ok=True)
    (store / block.id.hex()[:2] / block.id.hex()).write_bytes(block.data)
    writer = FlistWriter(path)
    writer.add_inode(parent=0, name="/", size=0, uid=0, gid=0, mode=DIR)
    etc = writer.add_inode(parent=1, name="etc", size=0, uid=0, gid=0, mode=DIR)
    passwd = writer.add_inode(parent=etc, name="passwd", size=11, uid=0, gid=0, mode=FILE)
    writer.add_blocks(passwd, [(block.id, block.key)])
    link = writer.add_inode(parent=etc, name="link", size=6, uid=0, gid=0, mode=LINK)
    writer.set_extra(link, b"passwd")
    writer.add_inode(parent=1, name="tmp", size=0, uid=0, gid=0, mode=DIR)
    writer.add_route(Route(0, 255, f"dir://{store}"))
    writer.close()


Edit = Callable[[sqlite3.Connection], object]

HOSTILE: dict[str, tuple[Edit, str]] = {
    "slash in name": (
        lambda db: db.execute("UPDATE inode SET name = '../../evil' WHERE name = 'passwd'"),
        "not a file name",
    ),
    "dot-dot name": (
        lambda db: db.execute("UPDATE inode SET name = '..' WHERE name = 'tmp'"),
        "not a file name",
    ),
    "empty name": (
        lambda db: db.execute("UPDATE inode SET name = '' WHERE name = 'tmp'"),
        "not a file name",
    ),
    "symlink climbing out": (
        lambda db: db.execute("UPDATE extra SET data = CAST('../../../etc/shadow' AS BLOB)"),
        "points outside the tree",
    ),
    "symlink climbing out through a subdirectory": (
        lambda db: db.execute("UPDATE extra SET data = CAST('x/../../../root' AS BLOB)"),
        "points outside the tree",
    ),
    "absurd size": (
        lambda db: db.execute("UPDATE inode SET size = 1 << 50 WHERE name = 'passwd'"),
        "out of range",
    ),
    "size beyond its blocks": (
        lambda db: db.execute("UPDATE inode SET size = 600000 WHERE name = 'passwd'"),
        "does not match",
    ),
    "negative size": (
        lambda db: db.execute("UPDATE inode SET size = -1 WHERE name = 'passwd'"),
        "out of range",
    ),
    "parent loop": (
        lambda db: db.executescript(
            "INSERT INTO inode (ino, parent, name, size, uid, gid, mode) VALUES"
            f" (50, 51, 'a', 0, 0, 0, {DIR}), (51, 50, 'b', 0, 0, 0, {DIR});"
        ),
        "not reachable from the root",
    ),
    "directory under itself": (
        lambda db: db.execute("UPDATE inode SET parent = ino WHERE name = 'tmp'"),
        "not reachable from the root",
    ),
    "child of a file": (
        lambda db: db.execute("UPDATE inode SET parent = 3 WHERE name = 'tmp'"),
        "not a directory but has children",
    ),
    "the same name twice": (
        lambda db: db.execute("UPDATE inode SET name = 'etc' WHERE name = 'tmp'"),
        "twice",
    ),
    "no root": (lambda db: db.execute("UPDATE inode SET parent = 7 WHERE ino = 1"), "no root"),
    "unknown file type": (
        lambda db: db.execute(f"UPDATE inode SET mode = {0o170644} WHERE name = 'passwd'"),
        "not a file type",
    ),
    "block id that is an integer": (
        lambda db: db.execute("UPDATE block SET id = 1073741824"),
        "must be a 32-byte blob",
    ),
    "block id that is empty": (
        lambda db: db.execute("UPDATE block SET id = X''"),
        "must be a 32-byte blob",
    ),
    "size that is a float": (
        lambda db: db.execute("UPDATE inode SET size = 9e999 WHERE name = 'passwd'"),
        "not a 64-bit integer",
    ),
    "time out of range": (
        lambda db: db.execute("UPDATE inode SET mtime = 1 << 60 WHERE name = 'passwd'"),
        "out of range",
    ),
    "negative device number": (
        lambda db: db.execute(
            f"INSERT INTO inode (parent, name, size, uid, gid, mode, rdev) VALUES"
            f" (1, 'null', 0, 0, 0, {stat.S_IFCHR | 0o666}, -1)"
        ),
        "device number",
    ),
    "paths deeper than PATH_MAX": (
        lambda db: db.executescript(
            "".join(
                f"INSERT INTO inode (ino, parent, name, size, uid, gid, mode) VALUES"
                f" ({100 + n}, {99 + n if n else 1}, '{'d' * 200}', 0, 0, 0, {DIR});"
                for n in range(30)
            )
        ),
        "longer than 4095 bytes",
    ),
    "hardlink to a directory": (
        lambda db: db.execute("INSERT INTO link (ino, target) VALUES (3, 2)"),
        "does not join two files",
    ),
}


def hostile_flist(tmp_path: Path, edit: Edit) -> Path:
    flist = tmp_path / "hostile.fl"
    base_flist(flist, tmp_path / "store")
    db = sqlite3.connect(flist)
    edit(db)
    db.commit()
    db.close()
    return flist


def test_the_base_flist_unpacks(tmp_path: Path) -> None:
    flist = tmp_path / "base.fl"
    base_flist(flist, tmp_path / "store")
    result = run_zgrid("flist", "unpack", str(flist), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/etc/passwd").read_text() == "root:x:0:0\n"
    assert os.readlink(tmp_path / "out/etc/link") == "passwd"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_flist_is_refused(tmp_path: Path, case: str) -> None:
    edit, message = HOSTILE[case]
    flist = hostile_flist(tmp_path, edit)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = zgrid_here("flist", "unpack", str(flist), str(tmp_path / "target" / "out"))
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # Checked before anything was made: not even the target directory exists.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    mount = run_zgrid("flist", "mount", str(flist), str(tmp_path))
    assert mount.returncode == 1 and message in mount.stderr


def test_device_nodes_need_root(tmp_path: Path) -> None:
    flist = hostile_flist(
        tmp_path,
        lambda db: db.execute(
            f"INSERT INTO inode (parent, name, size, uid, gid, mode, rdev) VALUES"
            f" (1, 'sda', 0, 0, 0, {stat.S_IFBLK | 0o660}, {os.makedev(8, 0)})"
        ),
    )
    with FlistReader(flist) as reader:
        with pytest.raises(UnsafeFlist, match="holds a device node"):
            check_tree(reader, allow_devices=False)
        check_tree(reader, allow_devices=True)
    require_root()
    target = Path(tempfile.mkdtemp(prefix="zgrid-nobody-"))  # pytest's tmp is root-only
    os.chmod(target, 0o755)
    flist = Path(shutil.copy(flist, target / "hostile.fl"))
    os.chmod(flist, 0o644)
    os.chown(target, 65534, 65534)
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            ZGRID,
            "flist",
            "unpack",
            str(flist),
            str(target / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": "/tmp"},
    )
    assert result.returncode == 1, result.stderr
    assert "holds a device node" in result.stderr
    assert not (target / "out").exists()
    shutil.rmtree(target)


def test_absolute_symlinks_stay_inside_the_tree(tmp_path: Path) -> None:
    """An absolute target names a path of the unpacked root filesystem, and nothing is
    ever written through a symlink."""
    flist = hostile_flist(
        tmp_path, lambda db: db.execute("UPDATE extra SET data = CAST('/etc/passwd' AS BLOB)")
    )
    out = tmp_path / "out"
    result = zgrid_here("flist", "unpack", str(flist), str(out))
    assert result.returncode == 0, result.stderr
    assert os.readlink(out / "etc/link") == "/etc/passwd"


def test_a_block_that_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    flist = tmp_path / "x.fl"
    base_flist(flist, tmp_path / "store")
    other = encode_block(b"something else")
    db = sqlite3.connect(flist)
    db.execute("UPDATE block SET key = ?", (other.key,))
    db.commit()
    db.close()
    result = zgrid_here("flist", "unpack", str(flist), str(tmp_path / "out"))
    assert result.returncode == 1
    assert "cannot be decrypted with its key" in result.stderr


def test_unpack_refuses_a_non_empty_target(tmp_path: Path) -> None:
    flist = tmp_path / "x.fl"
    base_flist(flist, tmp_path / "store")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/keep").write_text("mine")
    fetcher = BlockFetcher(Router.from_routes([Route(0, 255, f"dir://{tmp_path}/store")]))
    with pytest.raises(Exception, match="is not empty"):
        asyncio.run(unpack(flist, tmp_path / "out", fetcher))
    assert (tmp_path / "out/keep").read_text() == "mine"


def chained_escape(db: sqlite3.Connection) -> None:
    """sub/d1/d2/top -> ../../.. (the root: fine), then x -> sub/d1/d2/top/../../../../etc/passwd,
    which reads as inside the tree but goes through top, to the root, and four levels up."""
    parent: int | None = 1
    for name in ("sub", "d1", "d2"):
        parent = db.execute(
            "INSERT INTO inode (parent, name, size, uid, gid, mode) VALUES (?, ?, 0, 0, 0, ?)",
            (parent, name, DIR),
        ).lastrowid
    for where, name, target in (
        (parent, "top", b"../../.."),
        (1, "x", b"sub/d1/d2/top/../../../../etc/passwd"),
    ):
        ino = db.execute(
            "INSERT INTO inode (parent, name, size, uid, gid, mode) VALUES (?, ?, 0, 0, 0, ?)",
            (where, name, LINK),
        ).lastrowid
        db.execute("INSERT INTO extra (ino, data) VALUES (?, ?)", (ino, target))


def test_a_symlink_that_escapes_through_another_symlink_is_refused(tmp_path: Path) -> None:
    flist = hostile_flist(tmp_path, chained_escape)
    with (
        FlistReader(flist) as reader,
        pytest.raises(UnsafeFlist, match=r"^x: symlink points outside the tree"),
    ):
        check_tree(reader, allow_devices=True, allow_setuid=True)
    result = zgrid_here("flist", "unpack", str(flist), str(tmp_path / "out"))
    assert result.returncode == 1
    assert "symlink points outside the tree" in result.stderr
    assert not (tmp_path / "out").exists()

    # The same links, staying inside: top -> ../.. is sub, so x climbs from sub to the root.
    def inside(db: sqlite3.Connection) -> None:
        chained_escape(db)
        for old, new in (
            (b"../../..", b"../.."),
            (b"sub/d1/d2/top/../../../../etc/passwd", b"sub/d1/d2/top/../etc/passwd"),
        ):
            db.execute("UPDATE extra SET data = ? WHERE data = ?", (new, old))

    flist = hostile_flist(tmp_path / "ok", inside)
    with FlistReader(flist) as reader:
        check_tree(reader, allow_devices=False)

    # A loop of links is the kernel's ELOOP, not an escape.
    def looping(db: sqlite3.Connection) -> None:
        for name, target in (("a", b"b/.."), ("b", b"a/..")):
            ino = db.execute(
                "INSERT INTO inode (parent, name, size, uid, gid, mode) VALUES (1, ?, 0, 0, 0, ?)",
                (name, LINK),
            ).lastrowid
            db.execute("INSERT INTO extra (ino, data) VALUES (?, ?)", (ino, target))

    loop = hostile_flist(tmp_path / "loop", looping)
    with FlistReader(loop) as reader:
        check_tree(reader, allow_devices=False)


def test_setuid_files_and_devices_are_made_only_when_asked(tmp_path: Path) -> None:
    flist = hostile_flist(
        tmp_path, lambda db: db.execute(f"UPDATE inode SET mode = {FILE | 0o4755} WHERE ino = 3")
    )
    with (
        FlistReader(flist) as reader,
        pytest.raises(UnsafeFlist, match="etc/passwd: mode 4755 is setuid or setgid"),
    ):
        check_tree(reader, allow_devices=True)
    result = zgrid_here("flist", "unpack", str(flist), str(tmp_path / "out"))
    assert result.returncode == 1
    assert "--allow-setuid" in result.stderr
    assert not (tmp_path / "out").exists()
    result = zgrid_here("flist", "unpack", str(flist), str(tmp_path / "out"), "--allow-setuid")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "out/etc/passwd").stat().st_mode) == 0o4755

    device = hostile_flist(
        tmp_path / "dev",
        lambda db: db.execute(
            f"INSERT INTO inode (parent, name, size, uid, gid, mode, rdev) VALUES"
            f" (1, 'null', 0, 0, 0, {stat.S_IFCHR | 0o666}, {os.makedev(1, 3)})"
        ),
    )
    result = zgrid_here("flist", "unpack", str(device), str(tmp_path / "dev-out"))
    assert result.returncode == 1
    assert "holds a device node" in result.stderr
    require_root()
    result = zgrid_here(
        "flist", "unpack", str(device), str(tmp_path / "dev-out"), "--allow-devices"
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR((tmp_path / "dev-out/null").lstat().st_mode)


def test_a_failed_unpack_removes_what_it_made_so_it_can_be_retried(tmp_path: Path) -> None:
    flist = tmp_path / "base.fl"
    store = tmp_path / "store"
    base_flist(flist, store)
    blocks = sorted(p for p in store.rglob("*") if p.is_file())
    hidden = tmp_path / "hidden"
    blocks[0].rename(hidden)  # /etc/passwd cannot be fetched

    for target in (tmp_path / "new" / "deeper" / "out", tmp_path / "empty"):
        if target.name == "empty":
            target.mkdir()
        result = zgrid_here("flist", "unpack", str(flist), str(target))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        if target.name == "empty":
            assert target.is_dir() and list(target.iterdir()) == []  # it was there before
        else:
            assert not (tmp_path / "new").exists()  # every directory it made is gone
    hidden.rename(blocks[0])
    for target in (tmp_path / "new" / "deeper" / "out", tmp_path / "empty"):
        result = zgrid_here("flist", "unpack", str(flist), str(target))
        assert result.returncode == 0, result.stderr
        assert (target / "etc/passwd").read_text() == "root:x:0:0\n"
