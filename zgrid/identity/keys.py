"""ed25519 identities: signing, verifying, addresses, and sealed boxes to a public key.

A single ed25519 key does both jobs: it signs, and (converted to X25519 the way
libsodium does) it opens sealed boxes addressed to its public key. An address is
the lower-case hex of the 32-byte public key.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from zgrid.identity.errors import InvalidKeyError, UnsealError
from zgrid.identity.mnemonic import ed25519_seed_from_mnemonic
from zgrid.signatures import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, verify_ed25519

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "Identity",
    "address_of",
    "public_key_from_address",
    "seal",
    "verify",
]

_SEED_SIZE = 32


def address_of(public_key: bytes) -> str:
    """The address of an ed25519 public key: its lower-case hex."""
    _check_public_key(public_key)
    return public_key.hex()


def public_key_from_address(address: str) -> bytes:
    """Parse an address back into the 32-byte public key, naming what is wrong if it is not one."""
    text = address.strip().lower()
    if len(text) != 2 * PUBLIC_KEY_SIZE:
        raise InvalidKeyError(
            f"address must be {2 * PUBLIC_KEY_SIZE} hex characters, got {len(text)}"
        )
    try:
        public_key = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidKeyError(f"address is not hexadecimal: {address!r}") from exc
    _check_public_key(public_key)
    return public_key


def _check_public_key(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise InvalidKeyError(
            f"ed25519 public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}"
        )


verify = verify_ed25519


def _curve25519_public(public_key: bytes) -> nacl.public.PublicKey:
    _check_public_key(public_key)
    try:
        return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key))
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise InvalidKeyError("not a valid ed25519 public key (cannot convert to X25519)") from exc


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` so that only the holder of ``public_key``'s private key can read it.

    libsodium's anonymous sealed box to the X25519 form of the ed25519 key:
    48 bytes longer than the plaintext, different every call.
    """
    return bytes(nacl.public.SealedBox(_curve25519_public(public_key)).encrypt(plaintext))


class Identity:
    """A private ed25519 key: signs, and opens boxes sealed to its public key."""

    __slots__ = ("_box", "_signing_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != _SEED_SIZE:
            raise InvalidKeyError(f"ed25519 seed must be {_SEED_SIZE} bytes, got {len(seed)}")
        self._signing_key = nacl.signing.SigningKey(seed)
        curve_private = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(
            bytes(self._signing_key) + bytes(self._signing_key.verify_key)
        )
        self._box = nacl.public.SealedBox(nacl.public.PrivateKey(curve_private))

    @classmethod
    def from_mnemonic(cls, phrase: str, passphrase: str = "") -> Identity:
        """The identity a BIP39 phrase stands for (derivation in ``zgrid.identity.mnemonic``)."""
        return cls(ed25519_seed_from_mnemonic(phrase, passphrase))

    @property
    def public_key(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    @property
    def address(self) -> str:
        return self.public_key.hex()

    @property
    def seed(self) -> bytes:
        """The private seed. Treat as secret: whoever has it is this identity."""
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``message``."""
        return bytes(self._signing_key.sign(message).signature)

    def unseal(self, sealed: bytes) -> bytes:
        """Open a box made by :func:`seal` for this identity's public key."""
        try:
            return bytes(self._box.decrypt(sealed))
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise UnsealError(
                "cannot open sealed box: not sealed to this identity, or altered"
            ) from exc

    def __repr__(self) -> str:
        return f"Identity(address={self.address!r})"
