"""Identities sealed in the store: add, read, list, and what is refused."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from tests.client.store.conftest import MakeStore
from zgrid.client import Store, StoreError
from zgrid.identity import Identity, MnemonicError, new_mnemonic


def test_add_then_read_back(key_store: MakeStore, home: Path) -> None:
    phrase = new_mnemonic()
    made = key_store().add_identity(phrase.upper())
    store = key_store()
    assert store.mnemonic() == phrase
    assert store.identity().address == made.address == Identity.from_mnemonic(phrase).address
    path = store.identity_path()
    assert path == home / "identities" / "default.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_names_and_listing_need_no_key(key_store: MakeStore, home: Path) -> None:
    first, second = new_mnemonic(), new_mnemonic()
    key_store().add_identity(first)
    key_store().add_identity(second, name="ops")
    locked = Store(home)
    expected = [
        ("default", Identity.from_mnemonic(first).address),
        ("ops", Identity.from_mnemonic(second).address),
    ]
    assert locked.identities() == expected
    assert locked.address("ops") == expected[1][1]
    with pytest.raises(StoreError, match=r"no identity in .* named 'nobody'"):
        locked.address("nobody")


def test_overwrite_is_refused_unless_asked(key_store: MakeStore) -> None:
    first = key_store().add_identity(new_mnemonic())
    with pytest.raises(
        StoreError, match=r"already holds identity 'default' .* refusing to overwrite"
    ):
        key_store().add_identity(new_mnemonic())
    assert key_store().identity().address == first.address
    second = key_store().add_identity(new_mnemonic(), overwrite=True)
    assert key_store().identity().address == second.address != first.address


def test_missing_identity(key_store: MakeStore) -> None:
    with pytest.raises(
        StoreError,
        match=r"no identity in .* named 'default' \(create one with `zgrid identity new`",
    ):
        key_store().identity()
    with pytest.raises(StoreError, match="not a valid identity name"):
        key_store().identity("../../etc")


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("one two three", "got 3"),
        (" ".join(["abandon"] * 24), "checksum does not match"),
        (" ".join(["abandon"] * 22 + ["zzsecretword", "abandon"]), "mnemonic word 23 is not"),
        (" ".join(["zzsecretword", "abandon", "zz"] + ["abandon"] * 9), "words 1, 3 are not"),
        ("x" * 5000, "at most 1024 characters"),
    ],
)
def test_a_bad_phrase_is_named_without_its_words(
    key_store: MakeStore, home: Path, phrase: str, message: str
) -> None:
    with pytest.raises(MnemonicError, match=message) as caught:
        key_store().add_identity(phrase)
    assert "zzsecretword" not in str(caught.value)
    assert not (home / "identities").exists()


def test_a_file_copied_over_another_name_is_refused(key_store: MakeStore, home: Path) -> None:
    key_store().add_identity(new_mnemonic(), name="ops")
    key_store().add_identity(new_mnemonic())
    shutil.copy(home / "identities" / "ops.json", home / "identities" / "default.json")
    with pytest.raises(StoreError, match="belongs elsewhere: its name is not 'default'"):
        key_store().identity()


def test_a_changed_box_or_address_is_refused(key_store: MakeStore, home: Path) -> None:
    key_store().add_identity(new_mnemonic())
    path = home / "identities" / "default.json"
    document = json.loads(path.read_text())
    original = dict(document)
    document["address"] = "ab" * 32
    path.write_text(json.dumps(document))
    with pytest.raises(StoreError, match="belongs elsewhere: its address"):
        key_store().identity()
    box = original["box"]
    original["box"] = box[:40] + ("A" if box[40] != "A" else "B") + box[41:]
    path.write_text(json.dumps(original))
    with pytest.raises(StoreError, match="does not open with the store's key"):
        key_store().identity()
    path.write_text("x" * 100_000)
    with pytest.raises(StoreError, match="is larger than"):
        key_store().identity()
