"""Atomic, durable file writes: the new bytes or the old ones, never a torn file.

Every file zgrid rewrites in place (identity, genesis, Zero-DB namespace descriptors,
flist blocks, published flists) goes through here: write a temporary file beside the
target, fsync it, rename it over the target, fsync the directory so the rename itself
survives a power loss. A failure at any step removes the temporary and leaves the old
file as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fsync_directory", "replace_durably", "temporary_beside", "write_atomic"]


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a new file, a rename, a removal) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


def temporary_beside(path: Path) -> Path:
    """A name in ``path``'s directory that no other writer (process or thread) uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


@contextlib.contextmanager
def _removed_on_failure(temporary: Path) -> Iterator[None]:
    # The temporary may hold a secret: it never outlives a failed write.
    try:
        yield
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def replace_durably(temporary: Path, path: Path, *, sync: bool = True) -> None:
    """Move a finished ``temporary`` over ``path``: fsync its bytes, rename, fsync the directory.

    On failure the temporary is removed and ``path`` keeps its old content; the OSError
    is raised for the caller to translate.
    """
    with _removed_on_failure(temporary):
        if sync:
            fd = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temporary, path)
    if sync:
        fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (and durably unless ``sync=False``).

    ``mode`` is applied exactly, whatever the umask or an older file's mode. Raises the
    OSError of the step that failed; the old file is then untouched and no temporary
    stays behind.
    """
    temporary = temporary_beside(path)
    with _removed_on_failure(temporary):
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    if sync:
        fsync_directory(path.parent)
