"""The node's own key: made on first start, kept in its data directory, read on every start.

The key is an ordinary zgrid identity (a BIP39 mnemonic and the address it derives to,
:mod:`zgrid.identity.keystore`) at ``<data>/identity/identity.json``: the file 0600,
its directory 0700, both owned by the node's user. Because it is the same format as a
person's ``~/.zgrid``, ``zgrid --home <data>/identity account balance`` (or ``faucet``
on a dev chain) works on the node's account as it is.

The key signs the node's transactions and opens the deployments sealed to it, so a
file others can read (or a directory others can write) is refused rather than used:
the node does not start until the farmer has looked at it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from zgrid.identity import (
    Identity,
    KeyStoreError,
    identity_path,
    load_identity,
    new_mnemonic,
    save_identity,
)
from zgrid.node.errors import NodeConfigError

__all__ = ["identity_dir", "load_or_create_node_identity"]

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def identity_dir(data_dir: Path) -> Path:
    """The directory holding the node's key: ``<data_dir>/identity``."""
    return data_dir / "identity"


def load_or_create_node_identity(data_dir: Path) -> Identity:
    """The node's identity from ``<data_dir>/identity``, made there on the first start.

    NodeConfigError names the file and what is wrong: too open, damaged, unreadable.
    """
    home = identity_dir(data_dir)
    path = identity_path(home)
    try:
        home.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeConfigError(
            f"cannot make the node's key directory {home}: {exc.strerror or exc}"
        ) from exc
    _check_private(home, _DIR_MODE, "directory", "chmod 700")
    if not path.exists() and not path.is_symlink():
        try:
            return save_identity(home, new_mnemonic()).identity
        except KeyStoreError as exc:
            raise NodeConfigError(f"cannot make the node's key: {exc}") from exc
    _check_private(path, _FILE_MODE, "file", "chmod 600")
    try:
        return load_identity(home).identity
    except KeyStoreError as exc:
        raise NodeConfigError(
            f"the node's key cannot be used: {exc}. Restore {path} from a backup; only "
            f"if this node should start over as a new node (a new twin and node id, its "
            f"contracts lost), remove {home}"
        ) from exc


def _check_private(path: Path, allowed: int, kind: str, fix: str) -> None:
    """Refuse ``path`` unless it is a ``kind`` of this user that nobody else may read or write."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise NodeConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    wanted = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    if not wanted(info.st_mode):
        raise NodeConfigError(
            f"{path} must be a {kind} holding the node's key, not a symbolic link or other file"
        )
    if info.st_uid != os.geteuid():
        raise NodeConfigError(
            f"the node's key {kind} {path} belongs to user {info.st_uid}, not to the node's "
            f"user {os.geteuid()}; `chown {os.geteuid()} {path}`"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~allowed:
        raise NodeConfigError(
            f"the node's key {kind} {path} has mode {mode:04o}, open to other users; "
            f"it must be {allowed:04o} (`{fix} {path}`)"
        )
