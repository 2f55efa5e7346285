"""Errors of zgrid.identity.

IdentityError
├── MnemonicError      a mnemonic phrase is malformed or fails its checksum
├── InvalidKeyError    a key, signature or address has the wrong length or encoding
├── UnsealError        a sealed box cannot be opened with this key
└── KeyStoreError      the identity file is missing, unreadable or would be overwritten
"""

from zgrid.errors import ZgridError

__all__ = ["IdentityError", "InvalidKeyError", "KeyStoreError", "MnemonicError", "UnsealError"]


class IdentityError(ZgridError):
    """Root of the identity package's errors."""


class MnemonicError(IdentityError):
    """A mnemonic phrase is malformed or fails its BIP39 checksum."""


class InvalidKeyError(IdentityError):
    """A key, signature or address has the wrong length or encoding."""


class UnsealError(IdentityError):
    """A sealed box could not be opened: not sealed to this key, or tampered with."""


class KeyStoreError(IdentityError):
    """The identity file is missing, unreadable, or would be overwritten."""
