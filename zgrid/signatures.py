"""ed25519 verification, shared by ``zgrid.identity`` and ``zgrid.types`` (which may not import each other)."""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

__all__ = ["verify_ed25519"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True
