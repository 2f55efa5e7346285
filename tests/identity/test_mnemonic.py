"""Mnemonic phrases and the derivation from words to an ed25519 key."""

from __future__ import annotations

import nacl.signing
import pytest
from mnemonic import Mnemonic

from zgrid.identity import Identity, MnemonicError, new_mnemonic, normalize_mnemonic
from zgrid.identity.mnemonic import bip39_seed, slip10_ed25519_master

ABANDON_ART = " ".join(["abandon"] * 23 + ["art"])


def test_bip39_seed_matches_the_published_vector() -> None:
    # BIP39 English test vector: 256 zero bits of entropy, passphrase "TREZOR".
    assert bip39_seed(ABANDON_ART, "TREZOR").hex() == (
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd309"
        "7170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
    )


def test_bip39_seed_agrees_with_the_reference_library() -> None:
    phrase = new_mnemonic()
    assert bip39_seed(phrase, "pass") == Mnemonic.to_seed(phrase, "pass")


def test_slip10_master_matches_the_published_vector() -> None:
    # SLIP-0010 test vector 1 for ed25519, chain m.
    master = slip10_ed25519_master(bytes.fromhex("000102030405060708090a0b0c0d0e0f"))
    assert master.hex() == "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7"
    public = bytes(nacl.signing.SigningKey(master).verify_key)
    assert public.hex() == "a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed"


def test_new_mnemonic_has_24_valid_words_and_differs_each_time() -> None:
    first, second = new_mnemonic(), new_mnemonic()
    assert len(first.split()) == 24
    assert normalize_mnemonic(first) == first
    assert first != second


def test_same_phrase_same_key_whatever_the_spelling() -> None:
    phrase = new_mnemonic()
    messy = "  " + phrase.upper().replace(" ", "   \n ") + "\t"
    assert Identity.from_mnemonic(phrase).address == Identity.from_mnemonic(messy).address


def test_passphrase_changes_the_key() -> None:
    phrase = new_mnemonic()
    assert Identity.from_mnemonic(phrase).address != Identity.from_mnemonic(phrase, "x").address


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("abandon abandon", "must have 12, 15, 18, 21 or 24 words, got 2"),
        (" ".join(["abandon"] * 23 + ["zgridword"]), "not in the BIP39 English list: 'zgridword'"),
        (" ".join(["abandon"] * 24), "checksum does not match"),
        ("", "got 0"),
    ],
)
def test_bad_phrases_are_refused_precisely(phrase: str, message: str) -> None:
    with pytest.raises(MnemonicError, match=message):
        normalize_mnemonic(phrase)
