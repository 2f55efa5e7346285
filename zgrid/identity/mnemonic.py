"""BIP39 mnemonic phrases and the ed25519 seed derived from them.

Derivation, fixed so any implementation can recreate a key from its words:

1. The phrase is normalised (NFKD, lower case, single spaces) and checked
   against the BIP39 English word list and checksum.
2. BIP39 seed = PBKDF2-HMAC-SHA512(password=phrase, salt="mnemonic" + passphrase,
   2048 iterations, 64 bytes). The passphrase is empty unless the user gives one.
3. ed25519 private seed = the first 32 bytes of HMAC-SHA512(key="ed25519 seed",
   data=BIP39 seed): the SLIP-0010 master key for ed25519, without a path.

New phrases have 24 words (256 bits of entropy); any valid BIP39 length
(12, 15, 18, 21, 24 words) is accepted on import.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

from mnemonic import Mnemonic

from zgrid.identity.errors import MnemonicError

__all__ = [
    "bip39_seed",
    "ed25519_seed_from_mnemonic",
    "new_mnemonic",
    "normalize_mnemonic",
    "slip10_ed25519_master",
]

_WORD_COUNTS = (12, 15, 18, 21, 24)
_SLIP10_ED25519_KEY = b"ed25519 seed"
_PBKDF2_ROUNDS = 2048
_wordlist = Mnemonic("english")


def new_mnemonic() -> str:
    """A fresh 24-word phrase from 256 bits of system randomness."""
    return str(_wordlist.to_mnemonic(secrets.token_bytes(32)))


def normalize_mnemonic(phrase: str) -> str:
    """Return the canonical spelling of ``phrase`` or raise MnemonicError saying what is wrong."""
    words = unicodedata.normalize("NFKD", phrase).lower().split()
    if len(words) not in _WORD_COUNTS:
        raise MnemonicError(f"mnemonic must have 12, 15, 18, 21 or 24 words, got {len(words)}")
    unknown = [word for word in words if word not in _wordlist.wordlist]
    if unknown:
        shown = ", ".join(repr(word) for word in unknown[:3])
        raise MnemonicError(f"mnemonic has words not in the BIP39 English list: {shown}")
    normalized = " ".join(words)
    if not _wordlist.check(normalized):
        raise MnemonicError("mnemonic checksum does not match (a word is wrong or out of order)")
    return normalized


def bip39_seed(phrase: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP39 seed of a valid phrase (step 2 of the module docstring)."""
    normalized = normalize_mnemonic(phrase)
    salt = ("mnemonic" + unicodedata.normalize("NFKD", passphrase)).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha512", normalized.encode("utf-8"), salt, _PBKDF2_ROUNDS)


def slip10_ed25519_master(seed: bytes) -> bytes:
    """The SLIP-0010 ed25519 master private key of a seed (step 3 of the module docstring)."""
    return hmac.new(_SLIP10_ED25519_KEY, seed, hashlib.sha512).digest()[:32]


def ed25519_seed_from_mnemonic(phrase: str, passphrase: str = "") -> bytes:
    """The 32-byte ed25519 private seed for ``phrase`` (see the module docstring)."""
    return slip10_ed25519_master(bip39_seed(phrase, passphrase))
