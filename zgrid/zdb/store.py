"""All namespaces of one server: the roots, the lock files, creating, deleting and reloading."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from zgrid.atomic import fsync_directory
from zgrid.zdb.errors import CommandError, StorageError
from zgrid.zdb.files import PayloadCache, SyncPolicy
from zgrid.zdb.formats import MODE_USER, NAMESPACE_FILE, index_file_name
from zgrid.zdb.hooks import Hooks
from zgrid.zdb.namespace import Namespace

__all__ = ["DEFAULT_NAMESPACE", "MAX_NAMESPACE_LENGTH", "Store"]

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
MAX_NAMESPACE_LENGTH = 128
_MIN_DATASIZE = 512 * 1024
# What a deleted namespace's directories are renamed to before removal: too long to be a name.
_TOMBSTONE = ".zdb-deleted-"


class Store:
    """Owns the data and index roots while the server runs (an flock keeps others out)."""

    def __init__(
        self,
        *,
        data_root: Path,
        index_root: Path,
        mode: int | None = None,
        datasize: int = 256 * 1024 * 1024,
        sync: bool = False,
        synctime: int = 0,
        hooks: Hooks | None = None,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not _MIN_DATASIZE <= datasize < 0xFFFFFFFF:
            raise StorageError(
                f"datasize must be between {_MIN_DATASIZE} and 4294967294 bytes, got {datasize}"
            )
        self.data_root = data_root
        self.index_root = index_root
        self.fixed_mode = mode
        self.datasize = datasize
        self.sync, self.synctime = sync, synctime
        # Each namespace keeps up to this many bytes of recent payloads in memory.
        self.cache_bytes = cache_bytes
        self.hooks = hooks or Hooks(None, "")
        self.namespaces: dict[str, Namespace] = {}
        # Namespaces on disk that failed to load, with the reason: never served.
        self.unavailable: dict[str, str] = {}
        self._locks: list[int] = []

    # -- opening --------------------------------------------------------------------------

    def open(self) -> None:
        for root in (self.index_root, self.data_root):
            try:
                root.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {root}: {exc.strerror or exc}") from exc
        if self.index_root.resolve() == self.data_root.resolve():
            raise StorageError("--index and --data must be different directories")
        for root in (self.index_root, self.data_root):
            self._lock(root)
        for root in (self.index_root, self.data_root):
            for entry in os.scandir(root):
                if entry.name.startswith(_TOMBSTONE) and entry.is_dir(follow_symlinks=False):
                    _remove_tombstone(Path(entry.path))  # a namespace deleted before a stop
        self.hooks.fire("namespaces-init", str(self.index_root), str(self.data_root), wait=True)
        self._load(DEFAULT_NAMESPACE)  # without it nothing can be served: its errors are fatal
        for entry in sorted(os.scandir(self.index_root), key=lambda e: e.name):
            if entry.is_dir() and valid_name(entry.name) and entry.name != DEFAULT_NAMESPACE:
                try:
                    self._load(entry.name)
                except StorageError as exc:
                    # Not served, and its name stays taken so NSNEW cannot write over it.
                    log.error("namespace %s not served: %s", entry.name, exc)
                    self.unavailable[entry.name] = str(exc)

    def _lock(self, root: Path) -> None:
        fd = os.open(root / ".lockfile", os.O_RDWR | os.O_CREAT, 0o664)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"{root} is in use by another zdb instance") from exc
        self._locks.append(fd)

    def _make(self, name: str) -> Namespace:
        return Namespace(
            name,
            data_root=self.data_root,
            index_root=self.index_root,
            mode=MODE_USER if self.fixed_mode is None else self.fixed_mode,
            datasize=self.datasize,
            policy=SyncPolicy(sync=self.sync, synctime=self.synctime),  # each its own clock
            on_jump=self._jumped,
            cache=PayloadCache(self.cache_bytes),
            on_missing=self._missing_data,
        )

    def _load(self, name: str) -> Namespace:
        namespace = self._make(name)
        namespace.load(fixed_mode=self.fixed_mode)
        self.namespaces[name] = namespace
        return namespace

    def _missing_data(self, path: Path) -> bool:
        """The missing-data hook may bring an offloaded data file back: True means it says so."""
        return (
            bool(self.hooks.executable)
            and self.hooks.fire("missing-data", str(path), wait=True) == 0
        )

    def _jumped(self, namespace: Namespace, old: int, new: int) -> None:
        dirty = " ".join(str(fileid) for fileid in sorted(namespace.dirty_files))
        status = self.hooks.fire(
            "jump-index",
            str(namespace.index_dir / index_file_name(old)),
            str(namespace.index_dir / index_file_name(new)),
            dirty,
            wait=True,
        )
        if status == 0 and self.hooks.executable:
            namespace.dirty_files.clear()
        self.hooks.fire(
            "jump-data", str(namespace.files.data_path(old)), str(namespace.files.data_path(new))
        )

    # -- namespaces -----------------------------------------------------------------------

    def get(self, name: str) -> Namespace | None:
        return self.namespaces.get(name)

    def __iter__(self) -> Iterator[Namespace]:
        return iter(self.namespaces.values())

    @property
    def default(self) -> Namespace:
        return self.namespaces[DEFAULT_NAMESPACE]

    def create(self, name: str) -> Namespace:
        if not valid_name(name) or name == DEFAULT_NAMESPACE:
            raise CommandError("This name is not allowed")
        if name in self.namespaces or name in self.unavailable:
            raise CommandError("This namespace is not available")
        try:
            namespace = self._load(name)
        except StorageError as exc:
            raise CommandError("Could not create namespace") from exc
        self.hooks.fire("namespace-created", name)
        return namespace

    def delete(self, name: str) -> None:
        """Delete a namespace at once: both directories become tombstones, then go.

        The renames are the deletion (a tombstone is never loaded and is removed at
        the next start); if one fails, the namespace stays as it was and this raises.
        """
        namespace = self.namespaces[name]
        tombstone = _TOMBSTONE + secrets.token_hex(60)  # longer than any namespace name
        index_tomb, data_tomb = self.index_root / tombstone, self.data_root / tombstone
        try:
            os.rename(namespace.index_dir, index_tomb)
        except OSError as exc:
            raise StorageError(f"cannot delete namespace {name}: {exc.strerror or exc}") from exc
        try:
            os.rename(namespace.data_dir, data_tomb)
        except OSError as exc:
            try:
                os.rename(index_tomb, namespace.index_dir)
            except OSError as back:
                log.error("namespace %s: cannot restore its index directory: %s", name, back)
            raise StorageError(f"cannot delete namespace {name}: {exc.strerror or exc}") from exc
        for root in (self.index_root, self.data_root):
            with contextlib.suppress(OSError):
                fsync_directory(root)
        del self.namespaces[name]
        namespace.close()
        for tomb in (index_tomb, data_tomb):
            _remove_tombstone(tomb)
        self.hooks.fire("namespace-deleted", name)

    def reload(self, namespace: Namespace) -> None:
        namespace.reset_memory()
        namespace.load(fixed_mode=self.fixed_mode)

    def flush_namespace(self, namespace: Namespace) -> None:
        """FLUSH: remove every key and file of the namespace, keep its settings."""
        namespace.reset_memory()
        for directory in (namespace.index_dir, namespace.data_dir):
            for path in directory.iterdir():
                if path.name != NAMESPACE_FILE:
                    path.unlink()
        namespace.load(fixed_mode=self.fixed_mode)

    def write_out(self) -> None:
        for namespace in self.namespaces.values():
            namespace.write_out()

    def close(self) -> None:
        if not self._locks:
            return  # never opened, or already closed
        for namespace in self.namespaces.values():
            namespace.files.sync()
            self.hooks.fire(
                "namespace-closing",
                namespace.name,
                str(namespace.files.index_path(namespace.files.fileid)),
                str(namespace.files.data_path(namespace.files.fileid)),
                " ".join(str(fileid) for fileid in sorted(namespace.dirty_files)),
            )
            namespace.close()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()


def _remove_tombstone(path: Path) -> None:
    def failed(
        function: object, where: str, exc_info: tuple[object, BaseException, object]
    ) -> None:
        log.warning(
            "cannot remove %s of a deleted namespace (tried again at the next start): %s",
            where,
            exc_info[1],
        )

    shutil.rmtree(path, onerror=failed)


def valid_name(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and len(name.encode("utf-8", "surrogateescape")) <= MAX_NAMESPACE_LENGTH
    )
