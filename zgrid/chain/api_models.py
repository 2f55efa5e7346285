"""The bodies the ledger's HTTP API answers, as models: its OpenAPI describes them, and
every answer is checked against them before it leaves.

The records themselves (Account, Twin, Farm, Contract, ChainEvent, SignedHeader,
Genesis) are the models of zgrid.chain; these add the answers built around them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zgrid.chain.block import SignedHeader
from zgrid.chain.records import ChainEvent, Contract, Farm, Node, Twin
from zgrid.web import ErrorBody

__all__ = [
    "Accepted",
    "BatchAnswer",
    "Block",
    "ChainHead",
    "ContractPage",
    "FarmPage",
    "FreeResources",
    "NodePage",
    "NodeView",
    "TransactionStatus",
    "TwinPage",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainHead(_Answer):
    chain_id: str
    height: int = Field(description="the newest committed block")
    hash: str = Field(description="hex BLAKE2b-256 of that block's header")
    timestamp: int = Field(description="unix seconds the block was sealed at")
    state_commitment: str
    block_time: float = Field(description="seconds between blocks")


class Block(SignedHeader):
    """A committed block's signed header and the hashes of its transactions, in order."""

    transactions: list[str]


class TransactionStatus(_Answer):
    hash: str = Field(description="hex BLAKE2b-256 of the transaction's body")
    status: Literal["pending", "included"]
    height: int = Field(description="the block the transaction is (or will be) in")
    index: int = Field(description="its place in that block")
    result: dict[str, Any] = Field(description="what the call returned, e.g. a new twin's id")
    events: list[ChainEvent]


class Accepted(_Answer):
    """One transaction of a batch that was admitted to the open block."""

    hash: str


BatchAnswer = Accepted | ErrorBody  # one per transaction of a batch, in order


class FreeResources(_Answer):
    """Resources less what contracts reserve (or use, where that is more); negative when
    a node reported less capacity than its contracts already hold."""

    cru: int
    mru: int
    sru: int
    hru: int


class NodeView(Node):
    """A node as the API shows it: the record, its status and what is free on it."""

    status: Literal["up", "down", "standby"]
    free: FreeResources
    free_ips: int = Field(description="public IPs of its farm no contract holds")


class TwinPage(_Answer):
    items: list[Twin]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class FarmPage(_Answer):
    items: list[Farm]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class NodePage(_Answer):
    items: list[NodeView]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class ContractPage(_Answer):
    items: list[Contract]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int
