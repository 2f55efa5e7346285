"""Blocks: how a 512 KiB chunk of a file becomes a content-addressed, encrypted block.

key = BLAKE2b-256(plain chunk); the chunk is compressed with raw snappy and sealed with
AES-256-GCM under that key (nonce = key[:12], tag appended); id = BLAKE2b-256(ciphertext).
Equal chunks give equal blocks, so every store keeps each one once.
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zgrid.canonical import blake2b256
from zgrid.flist.errors import BlockError

__all__ = [
    "BLOCK_SIZE",
    "MAX_BLOCK_DATA",
    "Block",
    "block_id",
    "decode_block",
    "encode_block",
    "open_block",
    "seal_chunk",
]

BLOCK_SIZE = 512 * 1024
DIGEST_SIZE = 32
# The largest block a full chunk can become: snappy's worst case plus the GCM tag. The
# flist's author picks ids and keys, so anything bigger is refused before it is decoded.
MAX_BLOCK_DATA = 32 + BLOCK_SIZE + BLOCK_SIZE // 6 + 16


def block_id(ciphertext: bytes) -> bytes:
    """The id a store keeps ``ciphertext`` under."""
    return blake2b256(ciphertext)


@dataclass(frozen=True, slots=True)
class Block:
    """One encoded chunk: ``data`` is what a store holds under ``id``."""

    id: bytes
    key: bytes
    data: bytes


def _plain_length(compressed: bytes) -> int:
    """The length raw snappy data says it decompresses to (its leading varint)."""
    length = shift = 0
    for byte in compressed[:10]:
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    return 1 << 64  # no valid length: refused as too long


def seal_chunk(chunk: bytes, key: bytes) -> bytes:
    """What a store keeps for ``chunk`` (whose key is ``key``): compressed, then encrypted."""
    return AESGCM(key).encrypt(key[:12], bytes(cramjam.snappy.compress_raw(chunk)), None)


def encode_block(chunk: bytes) -> Block:
    key = blake2b256(chunk)
    data = seal_chunk(chunk, key)
    return Block(id=block_id(data), key=key, data=data)


def open_block(key: bytes, data: bytes) -> bytes:
    """The plain chunk of a block whose id is already checked, checked against its key."""
    name = key.hex()[:16]
    if len(key) != DIGEST_SIZE:
        raise BlockError("a block key must be 32 bytes")
    if len(data) > MAX_BLOCK_DATA:
        raise BlockError(f"block of key {name}… is {len(data)} bytes, more than a chunk can make")
    try:
        compressed = AESGCM(key).decrypt(key[:12], data, None)
        if _plain_length(compressed) > BLOCK_SIZE:
            raise BlockError(f"block of key {name}… decodes to more than {BLOCK_SIZE} bytes")
        chunk = bytes(cramjam.snappy.decompress_raw(compressed))
    except (InvalidTag, cramjam.DecompressionError) as exc:
        raise BlockError(f"block of key {name}… cannot be decrypted with its key") from exc
    if blake2b256(chunk) != key:
        raise BlockError(f"block of key {name}… does not match its key")
    return chunk


def decode_block(id_: bytes, key: bytes, data: bytes) -> bytes:
    """The plain chunk of a block, after checking it against both its id and its key."""
    if len(id_) != DIGEST_SIZE:
        raise BlockError("a block id must be 32 bytes")
    if len(data) > MAX_BLOCK_DATA:
        raise BlockError(f"block {id_.hex()} is {len(data)} bytes, more than a chunk can make")
    if block_id(data) != id_:
        raise BlockError(f"block {id_.hex()} does not match its id")
    return open_block(key, data)
