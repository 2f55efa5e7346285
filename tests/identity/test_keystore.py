"""The identity file: permissions, overwrite protection, damage detection."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from zgrid.identity import (
    KeyStoreError,
    MnemonicError,
    identity_path,
    load_identity,
    new_mnemonic,
    save_identity,
)


def test_save_then_load(tmp_path: Path) -> None:
    home = tmp_path / "home"
    phrase = new_mnemonic()
    saved = save_identity(home, phrase)
    loaded = load_identity(home)
    assert loaded.identity.address == saved.identity.address
    assert loaded.mnemonic == phrase
    assert stat.S_IMODE(identity_path(home).stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert [p.name for p in home.iterdir()] == ["identity.json"]  # no temporary left behind


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        save_identity(tmp_path, new_mnemonic())
    finally:
        os.umask(old)
    assert stat.S_IMODE(identity_path(tmp_path).stat().st_mode) == 0o600


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = save_identity(tmp_path, new_mnemonic())
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        save_identity(tmp_path, new_mnemonic())
    assert load_identity(tmp_path).identity.address == first.identity.address
    second = save_identity(tmp_path, new_mnemonic(), overwrite=True)
    assert load_identity(tmp_path).identity.address == second.identity.address


def test_invalid_mnemonic_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(MnemonicError):
        save_identity(tmp_path / "home", "not a phrase")
    assert not (tmp_path / "home").exists()


def test_missing_identity(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no identity in"):
        load_identity(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a zgrid identity file"),
        ('{"mnemonic": 5, "address": "x"}', "not a zgrid identity file"),
        ('{"address": "x"}', "not a zgrid identity file"),
        ('{"mnemonic": "a b c", "address": "x"}', "invalid mnemonic"),
    ],
)
def test_damaged_files(tmp_path: Path, content: str, message: str) -> None:
    identity_path(tmp_path).write_text(content)
    with pytest.raises(KeyStoreError, match=message):
        load_identity(tmp_path)


def test_address_mismatch_is_detected(tmp_path: Path) -> None:
    save_identity(tmp_path, new_mnemonic())
    path = identity_path(tmp_path)
    document = json.loads(path.read_text())
    document["address"] = "00" * 32
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="is damaged"):
        load_identity(tmp_path)


def test_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeyStoreError, match="cannot write identity"):
        save_identity(blocker / "home", new_mnemonic())
