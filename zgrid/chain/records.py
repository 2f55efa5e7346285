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
    "ChainEvent",
    "Contract",
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
    "Twin",
    "UsedJoinToken",
]

ContractState = Literal["created", "grace_period", "deleted"]
PowerState = Literal["up", "down", "standby"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Counter(Record):
    value: int


class Ref(Record):
    """An index entry pointing at a record by id (twin of an account, farm of a name ...)."""

    id: int


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
