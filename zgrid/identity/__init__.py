"""Who signs: BIP39 mnemonics, ed25519 keys, sealed boxes, canonical JSON and digests.

Everything zgrid signs goes through here: a mnemonic gives an ed25519 key
(:mod:`zgrid.identity.mnemonic` documents the derivation), the key signs
BLAKE2b-256 digests of canonical JSON, and the same key opens boxes sealed to
its public key.
"""

from zgrid.canonical import CanonicalJSONError, blake2b256, canonical_dumps, canonical_loads
from zgrid.identity.errors import (
    IdentityError,
    InvalidKeyError,
    KeyStoreError,
    MnemonicError,
    UnsealError,
)
from zgrid.identity.keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Identity,
    address_of,
    public_key_from_address,
    seal,
    verify,
)
from zgrid.identity.keystore import StoredIdentity, identity_path, load_identity, save_identity
from zgrid.identity.mnemonic import ed25519_seed_from_mnemonic, new_mnemonic, normalize_mnemonic
from zgrid.identity.wireguard import new_wireguard_key, wireguard_public_key

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "CanonicalJSONError",
    "Identity",
    "IdentityError",
    "InvalidKeyError",
    "KeyStoreError",
    "MnemonicError",
    "StoredIdentity",
    "UnsealError",
    "address_of",
    "blake2b256",
    "canonical_dumps",
    "canonical_loads",
    "ed25519_seed_from_mnemonic",
    "identity_path",
    "load_identity",
    "new_mnemonic",
    "new_wireguard_key",
    "normalize_mnemonic",
    "public_key_from_address",
    "save_identity",
    "seal",
    "verify",
    "wireguard_public_key",
]
