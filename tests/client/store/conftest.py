"""Stores on disk for the store's tests: fast Argon2id unless the test is about its cost."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from zgrid.client import Store, Unlocker
from zgrid.client.store import KdfLimits

FAST = KdfLimits(opslimit=1, memlimit=KdfLimits.MIN_MEM)

MakeStore = Callable[..., Store]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "store.key"
    path.parent.mkdir(mode=0o700)
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def passphrase_store(home: Path) -> MakeStore:
    """``make(passphrase="...")``: a store in ``home`` opened with that passphrase."""

    def make(passphrase: str = "correct horse battery staple", **options: object) -> Store:
        return Store(home, unlocker=Unlocker(passphrase=passphrase), kdf=FAST, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def key_store(home: Path, key_file: Path) -> MakeStore:
    def make(path: Path | None = None, **options: object) -> Store:
        return Store(home, unlocker=Unlocker(key_file=path or key_file), **options)  # type: ignore[arg-type]

    return make
