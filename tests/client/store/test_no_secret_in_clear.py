"""The store on disk holds no mnemonic, private key, passphrase or record secret in clear.

Every file under $ZGRID_HOME (recursively, as bytes) is searched for each phrase, its
words one by one (outside the sealed boxes, where random base64 could spell a short word,
and leaving out words the store writes itself, like "network"), the 32-byte seed raw, in
hex and in base64, the passphrase, and the secret values put in records.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest

from tests.client.store.clear_search import (
    assert_nothing_in_clear,
    clear_vocabulary,
    store_files,
)
from tests.client.store.conftest import MakeStore
from zgrid.client import NetworkConfig, Store
from zgrid.identity import Identity, new_mnemonic, save_identity

PASSPHRASE = "a passphrase nobody guesses 7f3a"


def _fill(store: Store, tmp_path: Path) -> tuple[list[str], list[str]]:
    """Identities, networks and records holding secrets in ``store``; what must not show."""
    phrases = [new_mnemonic(), new_mnemonic()]
    store.add_identity(phrases[0], name="alice")
    store.add_identity(phrases[1], name="ops")
    store.add_network(NetworkConfig("devnet", "http://127.0.0.1:8700", identity="ops"))
    store.add_network(NetworkConfig("main", "https://ledger.example", hub="https://hub.example"))
    record_secrets = [secrets.token_hex(16) for _ in range(3)]
    store.put_record("devnet", "web", {"password": record_secrets[0], "nodes": [1, 2]})
    store.put_record("main", "db", {"token": record_secrets[1], "env": {"K": record_secrets[2]}})
    store.put_record("devnet", "web", {"password": record_secrets[0], "nodes": [1, 2, 3]})
    return phrases, record_secrets


def test_a_passphrase_store_holds_no_secret_in_clear(
    passphrase_store: MakeStore, home: Path, tmp_path: Path
) -> None:
    store = passphrase_store(PASSPHRASE)
    phrases, record_secrets = _fill(store, tmp_path)
    assert passphrase_store(PASSPHRASE).mnemonic("ops") == phrases[1]  # really stored
    assert_nothing_in_clear(home, phrases, [*record_secrets, PASSPHRASE])


def test_a_key_file_store_holds_no_secret_in_clear(
    key_store: MakeStore, home: Path, key_file: Path, tmp_path: Path
) -> None:
    old_phrase = new_mnemonic()
    save_identity(home, old_phrase)  # an older home: moved in, then destroyed
    store = key_store()
    assert store.mnemonic() == old_phrase
    phrases, record_secrets = _fill(Store(home, unlocker=store.unlocker), tmp_path)
    assert key_store().record("main", "db") is not None
    key_hex = key_file.read_text().strip()
    key_forms = [key_hex, key_hex.upper(), base64.b64encode(bytes.fromhex(key_hex)).decode()]
    assert_nothing_in_clear(home, [*phrases, old_phrase], [*record_secrets, *key_forms])
    assert bytes.fromhex(key_hex) not in b"".join(store_files(home).values())


def test_the_search_finds_a_secret_left_in_clear(home: Path, tmp_path: Path) -> None:
    """The search itself works: a plain identity file is caught by each kind of check."""
    phrase = new_mnemonic()
    save_identity(home, phrase)
    with pytest.raises(AssertionError, match="holds a mnemonic"):
        assert_nothing_in_clear(home, [phrase], [])
    leaked = home / "leak.txt"
    (home / "identity.json").unlink()
    leaked.write_bytes(base64.b64encode(Identity.from_mnemonic(phrase).seed))
    with pytest.raises(AssertionError, match="holds a private key"):
        assert_nothing_in_clear(home, [phrase], [])
    word = next(w for w in phrase.split() if w not in clear_vocabulary(store_files(home), home))
    leaked.write_text(json.dumps({"note": word}))
    with pytest.raises(AssertionError, match="holds the word"):
        assert_nothing_in_clear(home, [phrase], [])
    leaked.write_text("token " + "ab12" * 4)
    with pytest.raises(AssertionError, match="holds ab12"):
        assert_nothing_in_clear(home, [phrase], ["ab12" * 4])
