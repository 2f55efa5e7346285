"""The bodies the ledger's HTTP API answers, as models: its OpenAPI describes them, and
every answer is checked against them before it leaves.

The records themselves (Account, Twin, Farm, Contract, ChainEvent, SignedHeader,
Genesis) are the models of zgrid.chain; these add the answers built around them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zgrid.chain.block import SignedHeader
from zgrid.chain.records import Bill, Billing, ChainEvent, Contract, Farm, Node, Reward, Twin
from zgrid.web import ErrorBody

__all__ = [
    "Accepted",
    "BatchAnswer",
    "BillPage",
    "Block",
    "ChainHead",
    "ContractPage",
    "ContractView",
    "DiscountTier",
    "DiscountView",
    "EconomyView",
    "FarmPage",
    "FreeResources",
    "NodePage",
    "NodeView",
    "RewardPage",
    "SupplyView",
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


class ContractView(Contract, Billing):
    """A contract as the API shows it: its record and where its billing stands."""


class ContractPage(_Answer):
    items: list[ContractView]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class SupplyView(_Answer):
    genesis: int = Field(description="token units genesis issued")
    minted: int = Field(description="token units farming rewards minted since")
    burned: int = Field(description="token units fees and payments burned since")
    total: int = Field(description="genesis + minted − burned: what all balances add up to")


class EconomyView(_Answer):
    token_price: int = Field(description="units USD per token in force now")
    oracle: str | None = Field(description="the account that sets the price; none: fixed")
    supply: SupplyView
    billing_period: int = Field(description="seconds of ledger time between two bills")
    grace_period: int = Field(description="seconds an unpaid contract is kept")
    farming_period: int = Field(description="seconds of ledger time of a farming period")


class BillPage(_Answer):
    items: list[Bill]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class RewardPage(_Answer):
    items: list[Reward]
    total: int = Field(description="items matching, on every page")
    page: int
    size: int


class DiscountTier(_Answer):
    months: str = Field(description="months of spending the balance must cover, a decimal")
    percent: int


class DiscountView(_Answer):
    twin_id: int
    balance: int = Field(description="token units the twin's account holds free")
    spend_usd_per_hour: int = Field(description="units USD an hour its live contracts cost")
    spend_tokens_per_hour: str = Field(description="token units an hour at today's price")
    months: str | None = Field(description="months the balance covers; none if it spends nothing")
    percent: int = Field(description="percent off its next bills")
    next_tier: DiscountTier | None = Field(description="the next better tier, if any")
    tiers: list[DiscountTier]
