"""The identity file in a zgrid home directory (``$ZGRID_HOME``, default ``~/.zgrid``).

``<home>/identity.json`` holds the mnemonic and the address it derives to. It is
created with mode 0600 inside a 0700 directory, written to a temporary file and
renamed into place, so a crash leaves either the old file or the new one, never
half of one. The address is stored too so a damaged phrase is noticed on load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.identity.errors import KeyStoreError, MnemonicError
from zgrid.identity.keys import Identity
from zgrid.identity.mnemonic import normalize_mnemonic

__all__ = ["StoredIdentity", "identity_path", "load_identity", "save_identity"]

_FILE_NAME = "identity.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoredIdentity:
    """An identity read from disk with the phrase it was made from."""

    mnemonic: str
    identity: Identity
    path: Path


def identity_path(home: Path) -> Path:
    return home / _FILE_NAME


def save_identity(home: Path, mnemonic: str, *, overwrite: bool = False) -> StoredIdentity:
    """Write the identity for ``mnemonic`` into ``home``; refuse to replace one unless told."""
    normalized = normalize_mnemonic(mnemonic)
    identity = Identity.from_mnemonic(normalized)
    path = identity_path(home)
    if path.exists() and not overwrite:
        raise KeyStoreError(
            f"{path} already holds an identity; refusing to overwrite it (use --force)"
        )
    body = json.dumps(
        {"version": _FORMAT_VERSION, "mnemonic": normalized, "address": identity.address},
        indent=2,
    ).encode("utf-8")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Atomic: a failure leaves the old file and no temporary copy of the secret behind.
        write_atomic(path, body + b"\n", mode=0o600)
    except OSError as exc:
        raise KeyStoreError(f"cannot write identity to {path}: {exc.strerror or exc}") from exc
    return StoredIdentity(mnemonic=normalized, identity=identity, path=path)


def load_identity(home: Path) -> StoredIdentity:
    """Read the identity in ``home``, naming what is wrong if there is none or it is damaged."""
    path = identity_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(
            f"no identity in {home} (create one with `zgrid identity new` or `import`)"
        ) from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(raw)
        mnemonic = document["mnemonic"]
        address = document["address"]
        if not isinstance(mnemonic, str) or not isinstance(address, str):
            raise TypeError("mnemonic and address must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyStoreError(f"{path} is not a zgrid identity file: {exc}") from exc
    try:
        normalized = normalize_mnemonic(mnemonic)
        identity = Identity.from_mnemonic(normalized)
    except MnemonicError as exc:
        raise KeyStoreError(f"{path} holds an invalid mnemonic: {exc}") from exc
    if identity.address != address:
        raise KeyStoreError(
            f"{path} is damaged: its mnemonic derives to {identity.address}, "
            f"but the file says {address}"
        )
    return StoredIdentity(mnemonic=normalized, identity=identity, path=path)
