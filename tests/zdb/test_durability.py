"""What survives a power loss with --sync (directory entries too), and NSDEL all or nothing."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, ReplyError
from zgrid.zdb import Store


class DirectoryFsyncs:
    """os.fsync, recording the directories it is called on."""

    def __init__(self) -> None:
        self.directories: list[Path] = []
        self._fsync = os.fsync

    def __call__(self, fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            self.directories.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        self._fsync(fd)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> DirectoryFsyncs:
    recorder = DirectoryFsyncs()
    monkeypatch.setattr(os, "fsync", recorder)
    return recorder


@pytest.mark.parametrize("flag", [{"sync": True}, {"synctime": 5}])
def test_a_new_namespace_and_a_rotated_file_fsync_their_directories(
    tmp_path: Path, fsyncs: DirectoryFsyncs, flag: dict[str, int]
) -> None:
    store = Store(data_root=tmp_path / "data", index_root=tmp_path / "index", **flag)  # type: ignore[arg-type]
    store.open()
    namespace = store.create("fresh")
    index, data = tmp_path / "index", tmp_path / "data"
    for directory in (index, data, index / "fresh", data / "fresh"):
        assert directory in fsyncs.directories, (directory, fsyncs.directories)
    namespace.set(b"k", b"v", 1)
    store.write_out()
    fsyncs.directories.clear()
    namespace.jump()  # d1 and i1 are new entries of the namespace's directories
    assert (data / "fresh" / "d1").exists()
    assert set(fsyncs.directories) == {index / "fresh", data / "fresh"}
    store.close()


def test_without_sync_a_rotation_does_not_fsync(tmp_path: Path, fsyncs: DirectoryFsyncs) -> None:
    store = Store(data_root=tmp_path / "data", index_root=tmp_path / "index")
    store.open()
    fsyncs.directories.clear()
    store.default.jump()
    assert fsyncs.directories == []
    store.close()


@contextmanager
def immutable(path: Path, moved_to: Callable[[], list[Path]] = list) -> Iterator[None]:
    """chattr +i: not even root may change or remove it (a real failure, not a mock).

    ``moved_to`` finds the file if it was moved meanwhile (inside a renamed directory).
    """
    require_root()
    chattr = require_tool("chattr")
    subprocess.run([chattr, "+i", str(path)], check=True)
    try:
        yield
    finally:
        for where in [path, *moved_to()]:
            if where.exists():
                subprocess.run([chattr, "-i", str(where)], check=True)


def _namespace_with_data(server: ZdbProcess, name: str) -> None:
    with RawSocket(server.port) as sock:
        assert sock.call("NSNEW", name) == b"OK"
        assert sock.call("SELECT", name) == b"OK"
        assert sock.call("SET", "key", "value") == b"key"


def _served(server: ZdbProcess, name: str) -> bool:
    with RawSocket(server.port) as sock:
        if sock.call("SELECT", name) != b"OK":
            return False
        assert sock.call("GET", "key") == b"value"
        return True


@pytest.mark.parametrize("root", ["index", "data"])
def test_nsdel_that_cannot_delete_says_so_and_the_namespace_stays_whole(
    zdb_factory: Callable[..., ZdbProcess], root: str
) -> None:
    server = zdb_factory()
    _namespace_with_data(server, "keep")
    with immutable(server.index if root == "index" else server.data):
        with RawSocket(server.port) as sock:
            assert sock.call("NSDEL", "keep") == ReplyError("Could not remove namespace")
        assert _served(server, "keep")
    assert "cannot delete namespace keep" in server.log.read_text()
    server.restart()
    assert _served(server, "keep")
    assert sorted(os.listdir(server.index)) == [".lockfile", "default", "keep"]
    assert sorted(os.listdir(server.data)) == [".lockfile", "default", "keep"]


def test_nsdel_is_done_even_if_removing_the_files_fails_and_they_never_load_again(
    zdb_factory: Callable[..., ZdbProcess],
) -> None:
    server = zdb_factory()
    _namespace_with_data(server, "gone")
    stuck = server.index / "gone" / "i0"
    with immutable(stuck, lambda: list(server.index.glob(".zdb-deleted-*/i0"))):
        with RawSocket(server.port) as sock:
            assert sock.call("NSDEL", "gone") == b"OK"
            assert b"gone" not in sock.call("NSLIST")  # type: ignore[operator]
        assert not (server.index / "gone").exists()
        assert not (server.data / "gone").exists()
        server.restart()  # the tombstone cannot be removed yet: it is still not loaded
        assert not _served(server, "gone")
    server.restart()
    assert not _served(server, "gone")
    assert sorted(os.listdir(server.index)) == [".lockfile", "default"]
    assert sorted(os.listdir(server.data)) == [".lockfile", "default"]
    with RawSocket(server.port) as sock:  # the name is free again, and empty
        assert sock.call("NSNEW", "gone") == b"OK"
        assert sock.call("SELECT", "gone") == b"OK"
        assert sock.call("GET", "key") is None
