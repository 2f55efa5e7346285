"""The plain identity.json of an older home moves into the store on first secret access."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.client.store.conftest import MakeStore
from zgrid.client import NetworkConfig, Store, StoreError, StoreLocked
from zgrid.identity import new_mnemonic, save_identity


def test_the_plain_file_moves_in_once(key_store: MakeStore, home: Path) -> None:
    phrase = new_mnemonic()
    old = save_identity(home, phrase)
    plain = home / "identity.json"
    store = key_store()
    store.add_network(NetworkConfig("devnet", "http://127.0.0.1:8700"))  # no secret: no move
    assert plain.exists() and store.notices == []
    assert store.identities() == [("default", old.identity.address)]  # listed before it moves
    assert store.identity().address == old.identity.address
    assert not plain.exists()
    assert [notice.kind for notice in store.notices] == ["migrated"]
    assert str(plain) in store.notices[0].message
    assert phrase not in store.notices[0].message
    again = key_store()
    assert again.mnemonic() == phrase
    assert again.notices == []  # the second run has nothing to do
    assert again.identities() == [("default", old.identity.address)]


def test_any_secret_access_moves_it(key_store: MakeStore, home: Path) -> None:
    save_identity(home, new_mnemonic())
    key_store().put_record("devnet", "web", {})
    assert not (home / "identity.json").exists()
    assert key_store().identity()


def test_moving_needs_the_key(home: Path) -> None:
    save_identity(home, new_mnemonic())
    with pytest.raises(StoreLocked):
        Store(home).identity()
    assert (home / "identity.json").exists()  # nothing lost


def test_a_different_default_is_never_replaced(key_store: MakeStore, home: Path) -> None:
    sealed_phrase = new_mnemonic()
    key_store().add_identity(sealed_phrase)
    plain_phrase = new_mnemonic()
    plain = save_identity(home, plain_phrase)
    before = (home / "identity.json").read_bytes()
    with pytest.raises(StoreError, match="already has another default identity") as caught:
        key_store().identity()
    assert plain.identity.address in str(caught.value)
    assert plain_phrase not in str(caught.value) and sealed_phrase not in str(caught.value)
    assert (home / "identity.json").read_bytes() == before
    (home / "identity.json").rename(home / "old-identity.json")
    assert key_store().mnemonic() == sealed_phrase


def test_a_copy_left_by_a_crash_is_removed(key_store: MakeStore, home: Path) -> None:
    """Killed after sealing but before removing the plain file: the next run finishes."""
    phrase = new_mnemonic()
    key_store().add_identity(phrase)
    save_identity(home, phrase)
    store = key_store()
    assert store.mnemonic() == phrase
    assert not (home / "identity.json").exists()
    assert [notice.kind for notice in store.notices] == ["migrated"]


def test_a_damaged_plain_file_is_kept_and_named_without_its_words(
    key_store: MakeStore, home: Path
) -> None:
    home.mkdir()
    plain = home / "identity.json"
    plain.write_text(json.dumps({"version": 1, "mnemonic": "zzsecret " * 12, "address": "x"}))
    with pytest.raises(
        StoreError, match=r"cannot move the plain identity .* invalid mnemonic"
    ) as e:
        key_store().identity()
    assert "zzsecret" not in str(e.value)
    assert plain.exists()


def test_not_migrating_reads_the_plain_file_in_place(home: Path) -> None:
    """A node's key directory: the node reads identity.json at each start, so it stays."""
    phrase = new_mnemonic()
    save_identity(home, phrase)
    store = Store(home, migrate_legacy=False)  # no key needed either
    assert store.mnemonic() == phrase
    assert (home / "identity.json").exists()
