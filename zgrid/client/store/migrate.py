"""The plain identity file of older homes (``$ZGRID_HOME/identity.json``): read and destroy.

:mod:`zgrid.identity` wrote the mnemonic in clear; the store moves it into its sealed
part as the ``default`` identity the first time a secret is needed, then overwrites the
plain file with zeros and removes it. (On a journaling or copy-on-write filesystem old
blocks may survive the overwrite; that is as much as a program can do about them.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import fsync_directory
from zgrid.client.errors import StoreError
from zgrid.client.store.sealed import os_failure
from zgrid.identity import Identity, KeyStoreError, MnemonicError, identity_path, load_identity

__all__ = ["LegacyIdentity", "destroy_legacy", "legacy_path", "read_legacy"]

_MAX_LEGACY_BYTES = 64 * 1024


@dataclass(frozen=True)
class LegacyIdentity:
    mnemonic: str
    identity: Identity
    path: Path

    def __repr__(self) -> str:  # never the mnemonic
        return f"LegacyIdentity({self.identity.address}, {self.path})"


def legacy_path(home: Path) -> Path:
    return identity_path(home)


def read_legacy(home: Path) -> LegacyIdentity | None:
    """The plain identity of ``home``, None if there is none; StoreError if it is damaged."""
    path = legacy_path(home)
    if not path.exists():
        return None
    try:
        if path.stat().st_size > _MAX_LEGACY_BYTES:
            raise StoreError(f"{path} is larger than {_MAX_LEGACY_BYTES} bytes: no identity file")
        stored = load_identity(home)
    except OSError as exc:
        raise os_failure("read", path, exc) from exc
    except KeyStoreError as exc:
        # Its message may quote words of the phrase: say what is wrong, not what is there.
        reason = "it holds an invalid mnemonic" if isinstance(exc.__cause__, MnemonicError) else exc
        raise StoreError(
            f"cannot move the plain identity {path} into the store: {reason}"
        ) from None
    return LegacyIdentity(mnemonic=stored.mnemonic, identity=stored.identity, path=path)


def destroy_legacy(path: Path) -> None:
    """Overwrite ``path`` with zeros, make that durable, then remove it durably."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise os_failure("overwrite", path, exc) from exc
    try:
        size = os.fstat(fd).st_size
        zeros = memoryview(bytes(size))
        while zeros:
            zeros = zeros[os.write(fd, zeros) :]
        os.fsync(fd)
    except OSError as exc:
        raise os_failure("overwrite", path, exc) from exc
    finally:
        os.close(fd)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise os_failure("remove", path, exc) from exc
    fsync_directory(path.parent)
