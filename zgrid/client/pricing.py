"""What a contract costs per hour, from the ledger's pricing policies (FORMATS.md "Ledger economics").

Amounts are exact fractions of *units*: 1 USD = 10,000,000 units USD and 1 token =
10,000,000 token units. A node contract costs su·SU + cu·CU + ipu·public_ips units USD
per hour, 25% more on a certified node, before any discount the payer's balance earns:
the ledger's own numbers (zgrid.chain's node_contract_hourly), so a plan shows the price
the ledger bills. Tokens are counted at the token price in force (the ledger's
``/economy``), which the oracle may have moved away from the genesis's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zgrid.chain import CERTIFIED_MARKUP, UNITS_PER_TOKEN, NotFound, node_contract_hourly
from zgrid.client.errors import InvalidAnswer

if TYPE_CHECKING:
    from zgrid.chain import ChainClient
    from zgrid.types import Capacity

__all__ = [
    "CERTIFIED_MARKUP",
    "PolicyPrices",
    "PriceTerms",
    "contract_price",
    "parse_price_terms",
    "price_terms",
    "to_tokens",
]

MAX_POLICIES = 1000  # a genesis with more pricing policies is not one the client reads

_U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
_POSITIVE = Annotated[int, Field(ge=1, le=2**64 - 1)]


@dataclass(frozen=True)
class PolicyPrices:
    """One pricing policy: every price in units USD per hour (``nu``: per GB of traffic)."""

    id: int
    name: str
    cu: int
    su: int
    nu: int
    ipu: int
    unique_name: int
    domain_name: int


@dataclass(frozen=True)
class PriceTerms:
    """The ledger's pricing policies by id and its token price (units USD per token)."""

    policies: Mapping[int, PolicyPrices]
    token_price: int

    def policy(self, policy_id: int) -> PolicyPrices:
        """The policy ``policy_id``; InvalidAnswer when the ledger has none by that id."""
        found = self.policies.get(policy_id)
        if found is None:
            known = ", ".join(str(i) for i in sorted(self.policies)) or "none"
            raise InvalidAnswer(
                f"the ledger has no pricing policy {policy_id} (its policies: {known})"
            )
        return found


class _Policy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: _POSITIVE
    name: str = Field(default="", max_length=256)
    cu: _U64
    su: _U64
    nu: _U64
    ipu: _U64
    unique_name: _U64
    domain_name: _U64


class _Genesis(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    price_policies: list[_Policy] = Field(min_length=1, max_length=MAX_POLICIES)
    token_price: _POSITIVE


class _Economy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token_price: _POSITIVE


def parse_price_terms(genesis: Any, economy: Any = None) -> PriceTerms:
    """The price terms of a genesis document (the ledger's ``/genesis`` answer), at the
    token price of ``economy`` (its ``/economy`` answer) when given, else the genesis's."""
    try:
        parsed = _Genesis.model_validate(genesis)
    except ValidationError as exc:
        raise InvalidAnswer(f"the ledger's genesis cannot be priced from: {_first(exc)}") from None
    token_price = parsed.token_price
    if economy is not None:
        try:
            token_price = _Economy.model_validate(economy).token_price
        except ValidationError as exc:
            raise InvalidAnswer(
                f"the ledger's economy has no token price to count in: {_first(exc)}"
            ) from None
    policies: dict[int, PolicyPrices] = {}
    for policy in parsed.price_policies:
        if policy.id in policies:
            raise InvalidAnswer(f"the ledger's genesis has pricing policy {policy.id} twice")
        policies[policy.id] = PolicyPrices(**policy.model_dump())
    return PriceTerms(MappingProxyType(policies), token_price)


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the document"
    return f"{where}: {first['msg']}"


async def price_terms(chain: ChainClient) -> PriceTerms:
    """The pricing policies of the ledger ``chain`` talks to and the token price in force
    there (the genesis's from a ledger that serves no ``/economy``)."""
    genesis = await chain.genesis()
    try:
        economy = await chain.economy()
    except NotFound:
        economy = None
    return parse_price_terms(genesis, economy)


def contract_price(
    capacity: Capacity, *, public_ips: int, policy: PolicyPrices, certified: bool
) -> Fraction:
    """Units USD per hour of a node contract reserving ``capacity`` with ``public_ips``.

    ``capacity.ipv4`` is not read: public IPs are priced through ``public_ips`` only. The
    certified markup applies to the whole price, IPs included, as the ledger bills it.
    """
    return node_contract_hourly(capacity, public_ips=public_ips, policy=policy, certified=certified)


def to_tokens(usd_units: Fraction, token_price: int) -> Fraction:
    """An amount of units USD in token units at ``token_price`` units USD per token."""
    if token_price <= 0:
        raise ValueError(f"a token price is a positive number of units USD, got {token_price}")
    return Fraction(usd_units) * UNITS_PER_TOKEN / token_price
