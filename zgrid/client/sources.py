"""Node offers read from the ledger's API: every page of ``/nodes`` and ``/farms``, bounded.

The ledger's answers are checked (types, ranges, string lengths, items per page) before
the planner sees them; a grid larger than ``max_pages`` pages is refused with a message
saying so rather than planned on a part of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zgrid.client.errors import InvalidAnswer
from zgrid.client.offers import NodeOffer
from zgrid.types import Capacity

if TYPE_CHECKING:
    from zgrid.chain import ChainClient

__all__ = ["MAX_PAGES", "PAGE_SIZE", "LedgerNodeSource"]

PAGE_SIZE = 1000  # the most the ledger's API answers per page
MAX_PAGES = 100  # so at most 100,000 nodes (and farms) are read

_U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
_I64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Identified(_Answer):
    id: _U64


_Row = TypeVar("_Row", bound=_Identified)


class _Resources(_Answer):
    cru: _U64 = 0
    mru: _U64 = 0
    sru: _U64 = 0
    hru: _U64 = 0


class _Free(_Answer):
    # Negative when a node reported less capacity than its contracts hold.
    cru: _I64 = 0
    mru: _I64 = 0
    sru: _I64 = 0
    hru: _I64 = 0


def total_capacity(resources: _Resources, ipv4: int) -> Capacity:
    return Capacity(
        cru=resources.cru, mru=resources.mru, sru=resources.sru, hru=resources.hru, ipv4=ipv4
    )


def free_capacity(free: _Free, ipv4: int) -> Capacity:
    """What a node has free; none of a resource it holds more of than it has."""
    return Capacity(
        cru=max(0, free.cru),
        mru=max(0, free.mru),
        sru=max(0, free.sru),
        hru=max(0, free.hru),
        ipv4=ipv4,
    )


class _Location(_Answer):
    country: str = Field(default="", max_length=64)
    city: str = Field(default="", max_length=64)


class _PublicConfig(_Answer):
    ipv4: str = Field(default="", max_length=64)
    domain: str = Field(default="", max_length=253)


def gateway_domain(ipv4: str, domain: str) -> str:
    """A node's gateway domain: it serves gateways only with a public IPv4 to serve them on."""
    return domain if ipv4 and domain else ""


class _NodeRow(_Identified):
    farm_id: _U64
    twin_id: _U64
    status: Literal["up", "down", "standby"]
    resources: _Resources
    free: _Free
    free_ips: _U64 = 0
    location: _Location = Field(default_factory=_Location)
    rented_by: _U64 = 0
    public_config: _PublicConfig | None = None


class _FarmIP(_Answer):
    contract_id: _U64 = 0


class _FarmRow(_Identified):
    name: str = Field(max_length=256)
    pricing_policy_id: _U64 = 1
    certification: str = Field(default="not_certified", max_length=64)
    public_ips: list[_FarmIP] = Field(default_factory=list, max_length=65536)


class _Page(_Answer):
    items: list[dict[str, Any]] = Field(max_length=PAGE_SIZE)
    total: _U64


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    return f"{where}: {first['msg']}"


class LedgerNodeSource:
    """Every node of the ledger ``chain`` talks to, as offers (a :class:`NodeSource`)."""

    kind = "ledger"

    def __init__(
        self, chain: ChainClient, *, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {PAGE_SIZE}, got {page_size}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be 1 or more, got {max_pages}")
        self._chain = chain
        self.page_size = page_size
        self.max_pages = max_pages

    @property
    def url(self) -> str:
        return self._chain.url

    @property
    def description(self) -> str:
        return f"the ledger at {self.url}"

    async def offers(self) -> list[NodeOffer]:
        """A snapshot of every node, ordered by node id. Farms are read after the nodes so
        every node's farm is among them (farms are never removed)."""
        nodes = await self._read_all("nodes", _NodeRow)
        farms = await self._read_all("farms", _FarmRow)
        return _offers(nodes, farms)

    async def _read_all(self, kind: str, row: type[_Row]) -> list[_Row]:
        most = self.max_pages * self.page_size
        rows: dict[int, _Row] = {}
        for number in range(1, self.max_pages + 1):
            answer = await self._chain.query(kind, page=number, size=self.page_size)
            try:
                page = _Page.model_validate(answer)
            except ValidationError as exc:
                raise InvalidAnswer(
                    f"the ledger's /{kind} page {number} is not a page: {_problem(exc)}"
                ) from None
            if page.total > most:
                raise InvalidAnswer(
                    f"the ledger lists {page.total} {kind}, more than the {most} this client "
                    f"reads ({self.max_pages} pages of {self.page_size})"
                )
            if len(page.items) > self.page_size:
                raise InvalidAnswer(
                    f"the ledger answered {len(page.items)} {kind} on a page of {self.page_size}"
                )
            for index, item in enumerate(page.items):
                try:
                    parsed = row.model_validate(item)
                except ValidationError as exc:
                    raise InvalidAnswer(
                        f"the ledger's /{kind} page {number} item {index}: {_problem(exc)}"
                    ) from None
                # A row added while paging can shift another onto the next page: keep one.
                rows.setdefault(parsed.id, parsed)
            if len(page.items) < self.page_size or len(rows) >= page.total:
                return [rows[key] for key in sorted(rows)]
        raise InvalidAnswer(
            f"the ledger lists more {kind} than the {most} this client reads "
            f"({self.max_pages} pages of {self.page_size})"
        )


def _offers(nodes: Sequence[_NodeRow], farms: Sequence[_FarmRow]) -> list[NodeOffer]:
    by_id = {farm.id: farm for farm in farms}
    offers = []
    for node in nodes:
        farm = by_id.get(node.farm_id)
        if farm is None:
            raise InvalidAnswer(
                f"node {node.id} is in farm {node.farm_id}, which the ledger does not list"
            )
        total = node.resources
        offers.append(
            NodeOffer(
                node_id=node.id,
                twin_id=node.twin_id,
                farm_id=farm.id,
                farm_name=farm.name,
                status=node.status,
                total=total_capacity(total, len(farm.public_ips)),
                free=free_capacity(node.free, node.free_ips),
                country=node.location.country,
                city=node.location.city,
                certified=farm.certification == "gold",
                pricing_policy_id=farm.pricing_policy_id,
                rented_by=node.rented_by,
                domain=gateway_domain(
                    node.public_config.ipv4 if node.public_config else "",
                    node.public_config.domain if node.public_config else "",
                ),
            )
        )
    return offers
