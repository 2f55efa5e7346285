"""WireGuard keys: X25519 key pairs in the base64 form `wg` reads and prints."""

from __future__ import annotations

import base64
import binascii
import os

import nacl.bindings

from zgrid.identity.errors import InvalidKeyError

__all__ = ["new_wireguard_key", "wireguard_public_key"]


def new_wireguard_key() -> str:
    """A new private key, as ``wg genkey`` prints one."""
    raw = bytearray(os.urandom(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode()


def wireguard_public_key(private_key: str) -> str:
    """The public key of a base64 private key, as ``wg pubkey`` derives it."""
    try:
        raw = bytearray(base64.b64decode(private_key, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidKeyError(f"a WireGuard key must be base64: {exc}") from exc
    if len(raw) != 32:
        raise InvalidKeyError(f"a WireGuard key is 32 bytes, got {len(raw)}")
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(nacl.bindings.crypto_scalarmult_base(bytes(raw))).decode()
