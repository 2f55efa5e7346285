"""Getting the store's key: passphrases, key files, prompts, and the refusals of each."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from tests.client.store.conftest import FAST, MakeStore
from zgrid.client import Store, StoreError, StoreLocked, Unlocker, WrongPassphrase
from zgrid.client.store import DEFAULT_KDF
from zgrid.identity import new_mnemonic


def test_a_wrong_passphrase_is_refused_not_garbage(passphrase_store: MakeStore) -> None:
    phrase = new_mnemonic()
    passphrase_store("right one").add_identity(phrase)
    with pytest.raises(WrongPassphrase, match=r"^wrong passphrase for the store in "):
        passphrase_store("wrong one").mnemonic()
    assert passphrase_store("right one").mnemonic() == phrase


def test_a_key_file_of_another_store_is_refused(
    key_store: MakeStore, tmp_path: Path, key_file: Path
) -> None:
    key_store().add_identity(new_mnemonic())
    other = tmp_path / "other.key"
    Store(tmp_path / "elsewhere", unlocker=Unlocker(key_file=other)).add_identity(new_mnemonic())
    with pytest.raises(WrongPassphrase, match=f"the key file {other} does not open the store"):
        key_store(other).identity()


def test_a_key_file_readable_by_others_is_refused(key_store: MakeStore, key_file: Path) -> None:
    key_file.chmod(0o644)
    with pytest.raises(StoreError, match=r"may be read by others \(mode 0644\): run `chmod 600"):
        key_store().add_identity(new_mnemonic())
    key_file.chmod(0o640)
    with pytest.raises(StoreError, match="mode 0640"):
        key_store().add_identity(new_mnemonic())
    key_file.chmod(0o600)
    key_store().add_identity(new_mnemonic())


@pytest.mark.parametrize("content", ["", "abc", "zz" * 32, "00" * 31, "00" * 33, "00" * 200])
def test_a_key_file_must_hold_64_hex_digits(
    key_store: MakeStore, key_file: Path, content: str
) -> None:
    key_file.write_text(content)
    with pytest.raises(StoreError, match="is not a zgrid key file"):
        key_store().add_identity(new_mnemonic())


def test_a_missing_key_file_is_made_with_the_store_and_said(home: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "new" / "dir" / "store.key"
    heard: list[str] = []
    store = Store(
        home, unlocker=Unlocker(key_file=key_file), on_notice=lambda n: heard.append(n.kind)
    )
    store.add_identity(new_mnemonic())
    assert heard == ["created"]
    assert [notice.kind for notice in store.notices] == ["created"]
    assert str(key_file) in store.notices[0].message
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32
    # Once the store exists, a missing key file is an error, never a new key.
    key_file.unlink()
    with pytest.raises(StoreError, match=f"the key file {key_file} does not exist"):
        Store(home, unlocker=Unlocker(key_file=key_file)).identity()
    assert not key_file.exists()


def test_a_locked_store_says_what_to_set(
    home: Path, passphrase_store: MakeStore, key_file: Path
) -> None:
    with pytest.raises(StoreLocked) as new:
        Store(home).add_identity(new_mnemonic())
    assert "set ZGRID_PASSPHRASE, or ZGRID_KEY_FILE" in str(new.value)
    assert "run the command on a terminal" in str(new.value)
    assert not (home / "store.json").exists()
    passphrase_store().add_identity(new_mnemonic())
    with pytest.raises(StoreLocked, match=r"is locked: set ZGRID_PASSPHRASE, or run") as locked:
        Store(home).identity()
    assert "not ZGRID_KEY_FILE" not in str(locked.value)
    with pytest.raises(StoreLocked, match=r"opens with a passphrase, not ZGRID_KEY_FILE"):
        Store(home, unlocker=Unlocker(key_file=key_file)).identity()


def test_a_key_file_store_asks_for_its_key_file(key_store: MakeStore, home: Path) -> None:
    key_store().add_identity(new_mnemonic())
    with pytest.raises(StoreLocked, match="opens with a key file: set ZGRID_KEY_FILE"):
        Store(home, unlocker=Unlocker(passphrase="anything")).identity()


def test_the_prompt_is_asked_once_and_confirms_a_new_passphrase(home: Path) -> None:
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append((text, confirm))
        return "typed"

    store = Store(home, unlocker=Unlocker(prompt=prompt), kdf=FAST)
    store.add_identity(new_mnemonic())
    store.add_identity(new_mnemonic(), name="two")
    store.put_record("devnet", "one", {"a": 1})
    assert asked == [(f"New passphrase for the store in {home}", True)]
    again = Store(home, unlocker=Unlocker(prompt=prompt))
    again.identity("two")
    again.identity()
    assert asked[1:] == [(f"Passphrase of the store in {home}", False)]
    # A passphrase given beats the prompt.
    Store(home, unlocker=Unlocker(passphrase="typed", prompt=prompt)).identity()
    assert len(asked) == 2


def test_an_empty_passphrase_is_refused(home: Path) -> None:
    store = Store(home, unlocker=Unlocker(prompt=lambda text, confirm: ""), kdf=FAST)
    with pytest.raises(StoreError, match="an empty passphrase protects nothing"):
        store.add_identity(new_mnemonic())
    assert not (home / "store.json").exists()
    from_prompt = Store(home, unlocker=Unlocker(prompt=lambda text, confirm: " "), kdf=FAST)
    from_prompt.add_identity(new_mnemonic())  # a space is a (weak) passphrase: accepted


def test_from_env_reads_both_variables(tmp_path: Path) -> None:
    unlocker = Unlocker.from_env(
        {"ZGRID_PASSPHRASE": "secret words", "ZGRID_KEY_FILE": str(tmp_path / "k")}
    )
    assert unlocker.passphrase == "secret words"
    assert unlocker.key_file == tmp_path / "k"
    assert "secret" not in repr(unlocker)
    empty = Unlocker.from_env({"ZGRID_PASSPHRASE": "", "ZGRID_KEY_FILE": ""})
    assert empty.passphrase is None and empty.key_file is None


def test_store_json_records_kind_salt_and_cost(passphrase_store: MakeStore, home: Path) -> None:
    passphrase_store().add_identity(new_mnemonic())
    meta = json.loads((home / "store.json").read_text())
    assert meta["kind"] == "passphrase"
    assert meta["kdf"]["algorithm"] == "argon2id13"
    assert len(bytes.fromhex(meta["kdf"]["salt"])) == 16
    assert (meta["kdf"]["opslimit"], meta["kdf"]["memlimit"]) == (FAST.opslimit, FAST.memlimit)
    assert stat.S_IMODE((home / "store.json").stat().st_mode) == 0o600


def test_a_tampered_cost_is_refused_before_any_work(
    passphrase_store: MakeStore, home: Path
) -> None:
    passphrase_store().add_identity(new_mnemonic())
    meta = json.loads((home / "store.json").read_text())
    meta["kdf"]["memlimit"] = 1 << 40  # would allocate a terabyte
    (home / "store.json").write_text(json.dumps(meta))
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"store.json is damaged: Argon2id memlimit"):
        passphrase_store().identity()
    assert time.monotonic() - started < 1
    meta["kdf"]["memlimit"] = FAST.memlimit
    meta["kdf"]["salt"] = "00" * 16  # another salt: another key
    (home / "store.json").write_text(json.dumps(meta))
    with pytest.raises(WrongPassphrase):
        passphrase_store().identity()


@pytest.mark.parametrize("content", ["{", "[]", '{"version": 2}', '{"version": 1, "kind": "x"}'])
def test_a_damaged_store_json_is_named(home: Path, content: str) -> None:
    home.mkdir()
    (home / "store.json").write_text(content)
    with pytest.raises(StoreError, match=f"{home / 'store.json'} is damaged"):
        Store(home, unlocker=Unlocker(passphrase="p")).put_record("devnet", "x", {})


def test_the_default_cost_is_argon2id_at_128_mib(home: Path) -> None:
    assert (DEFAULT_KDF.opslimit, DEFAULT_KDF.memlimit) == (3, 128 * 1024 * 1024)
    store = Store(home, unlocker=Unlocker(passphrase="p"))
    started = time.monotonic()
    store.add_identity(new_mnemonic())
    assert time.monotonic() - started > 0.05  # really memory-hard work, not a plain hash
    assert json.loads((home / "store.json").read_text())["kdf"]["memlimit"] == 128 << 20
