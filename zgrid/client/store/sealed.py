"""Files of the store: bounded reads, durable atomic writes, and sealed JSON documents.

A sealed file is clear JSON ``{"version": 1, <header>..., "box": base64}``; the box holds
the JSON payload, which repeats the header's fields, so a file copied over another name
(an identity renamed, a record moved to another network) is refused instead of used.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from zgrid.atomic import fsync_directory, write_atomic
from zgrid.client.errors import StoreError
from zgrid.client.store.crypto import BoxError, open_box, seal_box

__all__ = [
    "locked",
    "make_private_dir",
    "os_failure",
    "read_bounded",
    "read_header",
    "read_sealed",
    "sweep_temporaries",
    "write_private",
    "write_sealed",
]

_SEALED_VERSION = 1


def os_failure(action: str, path: Path, exc: OSError) -> StoreError:
    return StoreError(f"cannot {action} {path}: {exc.strerror or exc}")


def make_private_dir(directory: Path) -> None:
    """``directory`` (and its parents) made with mode 0700 if missing, the new entry durable."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_directory(directory.parent)
    except OSError as exc:
        raise os_failure("make the directory", directory, exc) from exc


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """An exclusive lock on the store in ``home`` across processes (``home/.lock``)."""
    make_private_dir(home)
    path = home / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise os_failure("lock", path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock (also when the process is killed)


def read_bounded(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path``, None if it does not exist; StoreError if larger than ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_failure("read", path, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise StoreError(f"{path} is larger than {limit} bytes: not a file of this store")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:  # grew while read
                raise StoreError(f"{path} is larger than {limit} bytes: not a file of this store")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise os_failure("read", path, exc) from exc
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600): the old bytes or the new, durably."""
    make_private_dir(path.parent)
    try:
        write_atomic(path, data, mode=0o600)
    except OSError as exc:
        raise os_failure("write", path, exc) from exc


def sweep_temporaries(directory: Path) -> None:
    """Remove temporaries a killed writer left in ``directory`` (their process is gone).

    They hold only sealed bytes, but would pile up. The name is ``.NAME.PID.RANDOM.tmp``
    (:func:`zgrid.atomic.temporary_beside`); a live process's are left alone.
    """
    try:
        entries = list(directory.glob(".*.tmp"))
    except OSError:
        return
    for entry in entries:
        parts = entry.name.split(".")
        if len(parts) < 5 or not parts[-3].isdigit():
            continue
        pid = int(parts[-3])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                entry.unlink()
        except (PermissionError, OverflowError, OSError):
            continue  # alive under another user, or not a pid: leave it


def write_sealed(
    path: Path, key: bytes, header: Mapping[str, str], payload: Mapping[str, Any]
) -> None:
    """Seal ``payload`` (with ``header``'s fields) under ``key`` into ``path``."""
    body = json.dumps({**payload, **header}, sort_keys=True, allow_nan=False).encode("utf-8")
    box = base64.b64encode(seal_box(key, body)).decode("ascii")
    document = {"version": _SEALED_VERSION, **header, "box": box}
    write_private(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _parse_wrapper(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{path} is damaged: not JSON") from exc
    if not isinstance(document, dict) or document.get("version") != _SEALED_VERSION:
        raise StoreError(f"{path} is damaged: not a version 1 sealed file of the store")
    if not isinstance(document.get("box"), str):
        raise StoreError(f"{path} is damaged: it has no sealed box")
    return document


def read_header(path: Path, limit: int) -> dict[str, Any] | None:
    """The clear fields of the sealed file ``path`` (no key needed); None if it is absent."""
    raw = read_bounded(path, limit)
    if raw is None:
        return None
    document = _parse_wrapper(raw, path)
    del document["box"]
    return document


def read_sealed(
    path: Path, key: bytes, header: Mapping[str, str], limit: int
) -> dict[str, Any] | None:
    """The payload sealed in ``path``, None if absent; refused unless it repeats ``header``."""
    raw = read_bounded(path, limit)
    if raw is None:
        return None
    document = _parse_wrapper(raw, path)
    try:
        sealed = base64.b64decode(document["box"], validate=True)
        payload = json.loads(open_box(key, sealed))
    except (binascii.Error, ValueError) as exc:
        raise StoreError(f"{path} is damaged: its sealed box is not readable") from exc
    except BoxError as exc:
        raise StoreError(
            f"{path} does not open with the store's key: it was changed, or comes from "
            "another store"
        ) from exc
    if not isinstance(payload, dict):
        raise StoreError(f"{path} is damaged: its sealed content is not an object")
    for field, expected in header.items():
        if payload.get(field) != expected or document.get(field) != expected:
            raise StoreError(f"{path} belongs elsewhere: its {field} is not {expected!r}")
    return payload
