"""Blocks: a signed header over the transactions, the events and the state commitment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from zgrid.chain.errors import VerificationFailed
from zgrid.chain.records import ChainEvent
from zgrid.chain.state import GENESIS_PARENT
from zgrid.identity import Identity, blake2b256, canonical_dumps, verify

if TYPE_CHECKING:
    from zgrid.chain.genesis import Genesis

__all__ = [
    "BlockHeader",
    "SignedHeader",
    "check_events",
    "check_header",
    "events_root",
    "transactions_root",
]


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


def check_header(
    where: str, signed: SignedHeader, genesis: Genesis, parent: SignedHeader | None
) -> None:
    """Raise VerificationFailed unless ``signed`` is the block after ``parent`` (None: the
    genesis block) of the chain ``genesis`` starts, hashed and signed by its validator."""
    header = signed.header
    expected_height = 0 if parent is None else parent.header.height + 1
    if header.height != expected_height:
        raise VerificationFailed(
            f"{where}: the header says height {header.height}, expected {expected_height}"
        )
    if header.chain_id != genesis.chain_id:
        raise VerificationFailed(
            f"{where}: the header is for chain {header.chain_id!r}, this is {genesis.chain_id!r}"
        )
    if header.validator != genesis.validator:
        raise VerificationFailed(
            f"{where}: the header names validator {header.validator[:16]}..., "
            f"not the genesis validator {genesis.validator[:16]}..."
        )
    if signed.hash != header.hash():
        raise VerificationFailed(
            f"{where}: hash or validator signature is wrong (the stored hash is not its header's)"
        )
    if not signed.is_valid():
        raise VerificationFailed(
            f"{where}: hash or validator signature is wrong (the signature does not verify)"
        )
    parent_hash = GENESIS_PARENT.hex() if parent is None else parent.hash
    if header.parent_hash != parent_hash:
        raise VerificationFailed(
            f"{where}: parent hash does not link to block {expected_height - 1}"
        )
    earliest = genesis.genesis_time if parent is None else parent.header.timestamp
    if header.timestamp < earliest:
        raise VerificationFailed(
            f"{where}: timestamp {header.timestamp} is earlier than "
            + ("the genesis time" if parent is None else "its parent's")
            + f" ({earliest})"
        )


def check_events(where: str, signed: SignedHeader, events: list[ChainEvent]) -> None:
    """Raise VerificationFailed unless ``events`` are the whole events of block ``signed``."""
    height = signed.header.height
    for index, event in enumerate(events):
        if event.height != height or event.index != index:
            raise VerificationFailed(
                f"{where}: event {event.height}-{event.index} is not event {height}-{index}"
            )
    if signed.header.events_root != events_root([event.model_dump() for event in events]):
        raise VerificationFailed(f"{where}: events root does not match its {len(events)} events")
