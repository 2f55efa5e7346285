"""Signing, verification, addresses and sealed boxes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zgrid.identity import (
    Identity,
    InvalidKeyError,
    UnsealError,
    address_of,
    public_key_from_address,
    seal,
    verify,
)

ALICE = Identity(bytes(range(32)))
BOB = Identity(bytes(range(1, 33)))


def test_sign_and_verify() -> None:
    signature = ALICE.sign(b"message")
    assert len(signature) == 64
    assert verify(ALICE.public_key, b"message", signature)
    assert not verify(BOB.public_key, b"message", signature)
    assert not verify(ALICE.public_key, b"messagE", signature)
    assert not verify(ALICE.public_key, b"message", signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not verify(ALICE.public_key[:31], b"message", signature)
    assert not verify(ALICE.public_key, b"message", signature[:10])


def test_address_is_hex_of_public_key_and_parses_back() -> None:
    assert ALICE.address == ALICE.public_key.hex() == address_of(ALICE.public_key)
    assert public_key_from_address(ALICE.address.upper()) == ALICE.public_key


@pytest.mark.parametrize(
    ("address", "message"),
    [("abcd", "64 hex characters, got 4"), ("zz" * 32, "not hexadecimal")],
)
def test_bad_addresses(address: str, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        public_key_from_address(address)


def test_bad_seed_length() -> None:
    with pytest.raises(InvalidKeyError, match="32 bytes, got 5"):
        Identity(b"short")


@settings(max_examples=25)
@given(st.binary(max_size=4096))
def test_seal_round_trip_only_for_the_recipient(plaintext: bytes) -> None:
    sealed = seal(BOB.public_key, plaintext)
    assert len(sealed) == len(plaintext) + 48
    assert BOB.unseal(sealed) == plaintext
    with pytest.raises(UnsealError, match="not sealed to this identity"):
        ALICE.unseal(sealed)


def test_sealing_is_randomised_and_tamper_evident() -> None:
    first, second = seal(BOB.public_key, b"secret"), seal(BOB.public_key, b"secret")
    assert first != second
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(UnsealError):
        BOB.unseal(tampered)
    with pytest.raises(UnsealError):
        BOB.unseal(b"too short")


def test_seal_to_a_bad_key() -> None:
    with pytest.raises(InvalidKeyError, match="32 bytes"):
        seal(b"\x01" * 31, b"x")


def test_repr_does_not_leak_the_seed() -> None:
    assert ALICE.seed.hex() not in repr(ALICE)
    assert ALICE.address in repr(ALICE)
