"""Blocks: a signed header over the transactions, the events and the state commitment."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from zgrid.identity import Identity, blake2b256, canonical_dumps, verify

__all__ = ["BlockHeader", "SignedHeader", "events_root", "transactions_root"]


class BlockHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: str
    height: int
    parent_hash: str
    timestamp: int
    transactions_root: str
    events_root: str
    state_commitment: str
    transaction_count: int
    validator: str

    def hash(self) -> str:
        return blake2b256(canonical_dumps(self.model_dump(mode="json"))).hex()


class SignedHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    header: BlockHeader
    hash: str
    signature: str

    @classmethod
    def sign(cls, header: BlockHeader, validator: Identity) -> SignedHeader:
        digest = header.hash()
        return cls(
            header=header, hash=digest, signature=validator.sign(bytes.fromhex(digest)).hex()
        )

    def is_valid(self) -> bool:
        """The hash matches the header and the named validator signed it."""
        digest = self.header.hash()
        try:
            validator, signature = (
                bytes.fromhex(self.header.validator),
                bytes.fromhex(self.signature),
            )
        except ValueError:  # not hex: nobody signed this
            return False
        return digest == self.hash and verify(validator, bytes.fromhex(digest), signature)


def transactions_root(tx_hashes: list[str]) -> str:
    return blake2b256(canonical_dumps(tx_hashes)).hex()


def events_root(events: list[dict[str, Any]]) -> str:
    return blake2b256(canonical_dumps(events)).hex()
