"""The records the ledger keeps: accounts, twins, farms, nodes, contracts, and their parts.

These are also the JSON bodies of the HTTP API. Amounts are integers of token
units; coordinates are decimal strings, because the ledger never stores floats.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zgrid.chain.units import U64, U64_MAX

__all__ = [
    "Account",
    "Approval",
    "Bill",
    "BillStatus",
    "Billing",
    "ChainEvent",
    "Contract",
    "ContractIds",
    "ContractState",
    "Counter",
    "Farm",
    "FarmIP",
    "Interface",
    "Location",
    "Node",
    "PowerState",
    "PublicConfig",
    "Record",
    "Ref",
    "Resources",
    "ResultReport",
    "Reward",
    "ScheduleChunk",
    "Split",
    "Twin",
    "UsedJoinToken",
]

ContractState = Literal["created", "grace_period", "deleted"]
BillStatus = Literal["paid", "owed", "unpaid"]
PowerState = Literal["up", "down", "standby"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Counter(Record):
    value: int


class Ref(Record):
    """An index entry pointing at a record by id (twin of an account, farm of a name ...)."""

    id: int


class ContractIds(Record):
    """Ids of contracts an index groups (the live contracts on a node)."""

    ids: list[int] = Field(default_factory=list)


class ScheduleChunk(Record):
    """Things ledger time makes due in one minute: "bill:<contract id>@<due time>",
    "farm:<node id>@<due time>"."""

    entries: list[str] = Field(default_factory=list)


class Account(Record):
    address: str
    nonce: int = 0
    free: int = 0
    reserved: int = 0


class Twin(Record):
    id: int
    account: str = Field(
        description="hex ed25519 public key; also the key deployments are sealed to"
    )
    relay: str = ""
    created: int
    spend: int = Field(
        default=0,
        description="units USD per hour its live contracts cost, as of their last bills",
    )
    grace: list[int] = Field(
        default_factory=list, description="its contracts in their grace period, oldest first"
    )


class FarmIP(Record):
    ip: str = Field(description="IPv4 address with prefix, e.g. 203.0.113.7/24")
    gateway: str
    contract_id: int = 0


class Farm(Record):
    id: int
    name: str
    twin_id: int
    pricing_policy_id: int = 1
    certification: Literal["not_certified", "gold"] = "not_certified"
    public_ips: list[FarmIP] = Field(default_factory=list)
    created: int


class Resources(Record):
    cru: U64 = 0
    mru: U64 = 0
    sru: U64 = 0
    hru: U64 = 0

    def overflow(self, other: Resources) -> str | None:
        """The first field ``plus(other)`` would take past 64 bits, or None."""
        return next(
            (
                name
                for name in ("cru", "mru", "sru", "hru")
                if getattr(self, name) + getattr(other, name) > U64_MAX
            ),
            None,
        )

    def plus(self, other: Resources) -> Resources:
        return Resources(
            cru=self.cru + other.cru,
            mru=self.mru + other.mru,
            sru=self.sru + other.sru,
            hru=self.hru + other.hru,
        )

    def minus(self, other: Resources) -> Resources:
        return Resources(
            cru=max(0, self.cru - other.cru),
            mru=max(0, self.mru - other.mru),
            sru=max(0, self.sru - other.sru),
            hru=max(0, self.hru - other.hru),
        )


class Location(Record):
    country: str = Field(default="", max_length=64)
    city: str = Field(default="", max_length=64)
    latitude: str = Field(default="", pattern=r"^(-?\d{1,2}(\.\d{1,8})?)?$")
    longitude: str = Field(default="", pattern=r"^(-?\d{1,3}(\.\d{1,8})?)?$")


class PublicConfig(Record):
    ipv4: str = ""
    gw4: str = ""
    ipv6: str = ""
    gw6: str = ""
    domain: str = ""


class Interface(Record):
    name: str = Field(max_length=16)
    mac: str = Field(default="", max_length=17)
    ips: list[str] = Field(default_factory=list, max_length=32)


class Node(Record):
    id: int
    farm_id: int
    twin_id: int
    resources: Resources
    used: Resources = Field(default_factory=Resources)
    reserved: Resources = Field(
        default_factory=Resources,
        description="the capacity its live node contracts declared, together",
    )
    location: Location = Field(default_factory=Location)
    public_config: PublicConfig | None = None
    interfaces: list[Interface] = Field(default_factory=list)
    secure_boot: bool = False
    virtualized: bool = False
    serial: str = ""
    power: PowerState = "up"
    created: int
    updated: int
    uptime: int = 0
    last_uptime_report: int = 0
    rented_by: int = 0
    rent_contract_id: int = 0
    # the farming period running now (zgrid.chain.domains.farming)
    period: int = Field(default=0, description="farming periods completed")
    period_start: int = 0
    period_uptime: int = Field(default=0, description="seconds of uptime credited this period")
    period_traffic: int = Field(default=0, description="bytes of traffic billed this period")
    period_ip_seconds: int = Field(
        default=0, description="public IPs × seconds billed to its contracts this period"
    )


class UsedJoinToken(Record):
    """A join token a node registered with; each is good for one registration."""

    farm_id: int
    token_id: str
    node_id: int
    used: int


class Approval(Record):
    twin_id: int
    signature: str
    deployment_hash: str


class ResultReport(Record):
    version: int
    sealed_results: str
    reported: int


class Contract(Record):
    id: int
    type: Literal["node", "name", "rent"]
    twin_id: int
    state: ContractState = "created"
    deleted_reason: str = ""
    created: int
    updated: int
    # node contracts
    node_id: int = 0
    version: int = 0
    deployment_hash: str = ""
    sealed_deployment: str = ""
    public_ips: list[FarmIP] = Field(default_factory=list)
    approvers: list[int] = Field(
        default_factory=list,
        description="the twins of the deployment's signature requirement; only they may approve",
    )
    approvals: list[Approval] = Field(default_factory=list)
    result: ResultReport | None = None
    capacity: Resources = Field(
        default_factory=Resources,
        description="what the node contract reserves on its node, as its deployer declared",
    )
    used: Resources = Field(default_factory=Resources)
    # name contracts
    name: str = ""


class Billing(Record):
    """Where a contract's billing stands (kept apart from the contract, which is large
    and changes seldom, while this changes at every bill)."""

    billed_until: int = Field(default=0, description="ledger time its last bill reached")
    next_bill: int = Field(default=0, description="ledger time its next bill falls due")
    bills: int = Field(default=0, description="bills so far, numbered from 1")
    hourly: int = Field(default=0, description="units USD an hour it costs now")
    traffic: int = Field(default=0, description="bytes of traffic reported, not yet billed")
    owed: int = Field(default=0, description="token units of its unpaid bills")
    first_owed_bill: int = 0
    grace_since: int = Field(default=0, description="ledger time its grace period began")


class Split(Record):
    """Where a payment went, in token units; the parts add up to the amount paid."""

    burned: int = 0
    farmer: int = 0
    validators: int = 0
    foundation: int = 0


class Bill(Record):
    """One billing period of one contract."""

    contract_id: int
    number: int
    period_start: int
    period_end: int
    usd: int = Field(description="units USD the period cost before the discount")
    token_price: int = Field(description="units USD per token when it was billed")
    tokens: int = Field(description="token units before the discount")
    discount: int = Field(description="percent off for the twin's staked balance")
    amount: int = Field(description="token units owed: tokens less the discount")
    traffic: int = Field(default=0, description="bytes of traffic it billed")
    status: BillStatus = Field(
        description="paid; owed (grace period); unpaid (the contract ended owing it)"
    )
    paid_at: int = 0
    split: Split = Field(default_factory=Split)


class Reward(Record):
    """A node's farming reward for one farming period (minted to its farmer's twin)."""

    node_id: int
    farm_id: int
    period: int
    period_start: int
    period_end: int
    uptime_permille: int
    cu: str = Field(description="farming compute units of the node, a decimal")
    su: str = Field(description="farming storage units of the node, a decimal")
    traffic: int = Field(description="bytes of traffic billed on the node in the period")
    ip_seconds: int
    usd: int = Field(description="units USD the policy pays for the period")
    token_price: int
    tokens: int = Field(description="token units minted to the farmer's twin; 0 below the uptime")
    reason: str = Field(default="", description="why nothing was paid, when nothing was")


class ChainEvent(BaseModel):
    """One event of one block, as stored and as streamed."""

    model_config = ConfigDict(frozen=True)

    height: int
    index: int
    tx_hash: str | None
    name: str
    data: dict[str, Any]

    @property
    def cursor(self) -> str:
        """The position right after this event; a follower resumes from it."""
        return f"{self.height}-{self.index}"
