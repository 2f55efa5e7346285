"""The store's cryptography: Argon2id keys from passphrases, key files, and secretbox.

A store's key is 32 bytes. From a passphrase it is Argon2id (libsodium's ``argon2id13``)
of the passphrase and a random 16-byte salt; from a key file it is a BLAKE2b of the
file's 32 random bytes (so the key that encrypts is never the bytes lying in the file).
Every secret is sealed with XSalsa20-Poly1305 (``crypto_secretbox``) under a fresh random
nonce, so a changed or truncated file fails to open instead of decrypting to garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from zgrid.atomic import fsync_directory
from zgrid.client.errors import StoreError

__all__ = [
    "DEFAULT_KDF",
    "KEY_SIZE",
    "SALT_SIZE",
    "BoxError",
    "KdfLimits",
    "check_value",
    "create_key_file",
    "derive_key",
    "key_from_file_bytes",
    "open_box",
    "read_key_file",
    "seal_box",
    "verify_check",
]

KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE
SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES
MAX_PASSPHRASE_BYTES = 1024
_KEY_FILE_MAX_BYTES = 256
_CHECK_PLAINTEXT = b"zgrid store check v1"
_KEY_FILE_PERSON = b"zgrid-store-key1"  # BLAKE2b personalisation: 16 bytes


@dataclass(frozen=True)
class KdfLimits:
    """Argon2id's cost: ``opslimit`` passes over ``memlimit`` bytes of memory."""

    opslimit: int
    memlimit: int

    # What a store file may ask for: the floor keeps a tampered store.json from making a
    # passphrase cheap to guess (it would then fail the check, but never silently), the
    # ceiling keeps it from making every command allocate gigabytes or run for minutes.
    MIN_OPS = nacl.pwhash.argon2id.OPSLIMIT_MIN
    MAX_OPS = 16
    MIN_MEM = nacl.pwhash.argon2id.MEMLIMIT_MIN
    MAX_MEM = 1 << 30

    def check(self) -> None:
        if not self.MIN_OPS <= self.opslimit <= self.MAX_OPS:
            raise StoreError(
                f"Argon2id opslimit {self.opslimit} is outside {self.MIN_OPS}..{self.MAX_OPS}"
            )
        if not self.MIN_MEM <= self.memlimit <= self.MAX_MEM:
            raise StoreError(
                f"Argon2id memlimit {self.memlimit} is outside {self.MIN_MEM}..{self.MAX_MEM} bytes"
            )


# Three passes over 128 MiB: about 0.4 s on one core of a 2020s machine. Every command
# that signs pays it once per run (the key is kept for the rest of the run), which a person
# does not notice, while each guess costs an attacker the same 128 MiB and 0.4 s — between
# libsodium's "interactive" (2 x 64 MiB) and "moderate" (3 x 256 MiB, ~1 s) presets.
DEFAULT_KDF = KdfLimits(opslimit=3, memlimit=128 * 1024 * 1024)


class BoxError(Exception):
    """A sealed box did not open: another key, or the bytes were changed."""


def derive_key(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    """The store key for ``passphrase`` (Argon2id with ``salt`` and ``limits``)."""
    limits.check()
    secret = passphrase.encode("utf-8")
    if not secret:
        raise StoreError("an empty passphrase protects nothing: choose one")
    if len(secret) > MAX_PASSPHRASE_BYTES:
        raise StoreError(f"a passphrase longer than {MAX_PASSPHRASE_BYTES} bytes is refused")
    if len(salt) != SALT_SIZE:
        raise StoreError(f"the store's salt must be {SALT_SIZE} bytes, not {len(salt)}")
    key: bytes = nacl.pwhash.argon2id.kdf(
        KEY_SIZE, secret, salt, opslimit=limits.opslimit, memlimit=limits.memlimit
    )
    return key


def key_from_file_bytes(raw: bytes) -> bytes:
    """The store key for a key file's 32 bytes."""
    return hashlib.blake2b(raw, digest_size=KEY_SIZE, person=_KEY_FILE_PERSON).digest()


def seal_box(key: bytes, plaintext: bytes) -> bytes:
    """``plaintext`` encrypted and authenticated under ``key`` (nonce first)."""
    sealed: bytes = nacl.secret.SecretBox(key).encrypt(plaintext)
    return sealed


def open_box(key: bytes, sealed: bytes) -> bytes:
    """The plaintext of ``sealed``; BoxError when the key is another or the bytes changed."""
    try:
        plaintext: bytes = nacl.secret.SecretBox(key).decrypt(sealed)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise BoxError("the sealed data does not open with this key") from exc
    return plaintext


def check_value(key: bytes) -> str:
    """A known text sealed under ``key`` (base64): opening it proves the key is the store's."""
    return base64.b64encode(seal_box(key, _CHECK_PLAINTEXT)).decode("ascii")


def verify_check(key: bytes, check: str) -> bool:
    try:
        sealed = base64.b64decode(check, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        return open_box(key, sealed) == _CHECK_PLAINTEXT
    except BoxError:
        return False


def read_key_file(path: Path) -> bytes:
    """The 32 bytes of a key file (64 hex digits); refused if group or others may read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise StoreError(f"the key file {path} does not exist") from exc
    except OSError as exc:
        raise StoreError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(f"the key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise StoreError(
                f"the key file {path} may be read by others (mode {mode:04o}): "
                f"run `chmod 600 {path}` if nobody else has seen it, else make a new store"
            )
        content = os.read(fd, _KEY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    text = content.strip()
    if len(content) > _KEY_FILE_MAX_BYTES or len(text) != 2 * KEY_SIZE:
        raise StoreError(f"{path} is not a zgrid key file (it must hold 64 hex digits)")
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path} is not a zgrid key file (it must hold 64 hex digits)") from exc


def create_key_file(path: Path) -> bool:
    """Write 32 random bytes (hex, mode 0600) to ``path`` unless it exists; True if made."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except FileExistsError:
        return False  # made meanwhile by another command: read it like any key file
    except OSError as exc:
        raise StoreError(f"cannot create the key file {path}: {exc.strerror or exc}") from exc
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (nacl.utils.random(KEY_SIZE).hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(path.parent)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StoreError(f"cannot create the key file {path}: {exc.strerror or exc}") from exc
    return True
