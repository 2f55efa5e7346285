"""Node offers read from an explorer's grid-proxy API: every page of ``/nodes`` and
``/farms``, bounded and checked like the ledger's (:mod:`zgrid.client.sources`).

The explorer's free capacity already subtracts each node's system reserve (FORMATS.md,
"Explorer queries": memory less max(10 %, 2 GiB), SSD less 20 GiB), so a plan made from
it leaves nodes that margin. An explorer that cannot be reached, or that answers an
error, is an :class:`ExplorerUnavailable` naming it and saying how to plan without it: the
client never falls back to the ledger on its own.

Given the ledger's height (``ledger_height``), the source first waits, a bounded time,
until the explorer has indexed the ledger up to it (zgrid's ``/indexer``), so a plan made
right after a change on the ledger (a node joined, a contract made) sees it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import orjson
from pydantic import Field, ValidationError

from zgrid.client.errors import ExplorerUnavailable, InvalidAnswer
from zgrid.client.offers import NodeOffer

# The answer models the ledger's node source checks with: the same ranges for both sources.
from zgrid.client.sources import (
    _U64,
    MAX_PAGES,
    PAGE_SIZE,
    _Answer,
    _Free,
    _Resources,
    free_capacity,
    gateway_domain,
    total_capacity,
)

if TYPE_CHECKING:
    from zgrid.client.store import NetworkConfig

__all__ = ["MAX_PAGE_BYTES", "ExplorerNodeSource", "network_explorer", "without_explorer"]

MAX_PAGE_BYTES = 16 << 20  # one page of 1000 nodes is about 2 MB
DEFAULT_TIMEOUT = 30.0  # seconds for each request
CATCH_UP = 20.0  # seconds the explorer gets to index the ledger up to its height
_CATCH_UP_POLL = 0.2
_ERROR_TEXT = 300  # characters of an explorer's error message shown


class _PublicConfig(_Answer):
    ipv4: str = Field(default="", max_length=64)
    domain: str = Field(default="", max_length=253)


class _Node(_Answer):
    nodeId: _U64  # the grid proxy's names
    twinId: _U64
    farmId: _U64
    status: Literal["up", "down", "standby"]
    total_resources: _Resources
    free_resources: _Free
    farm_free_ips: _U64 = 0
    country: str = Field(default="", max_length=64)
    city: str = Field(default="", max_length=64)
    certificationType: str = Field(default="DIY", max_length=64)
    rentedByTwinId: _U64 = 0
    publicConfig: _PublicConfig = Field(default_factory=_PublicConfig)

    @property
    def key(self) -> int:
        return self.nodeId


class _FarmIP(_Answer):
    ip: str = Field(default="", max_length=64)


class _Farm(_Answer):
    farmId: _U64
    name: str = Field(max_length=256)
    pricingPolicyId: _U64 = 1
    publicIps: list[_FarmIP] = Field(default_factory=list, max_length=65536)

    @property
    def key(self) -> int:
        return self.farmId


class _Indexer(_Answer):
    height: int = Field(ge=-1, le=2**63 - 1)
    error: str = Field(default="", max_length=4096)


_Row = TypeVar("_Row", _Node, _Farm)


@dataclass(frozen=True)
class _Got:
    document: Any
    count: str | None  # the count header, with ret_count=true


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    return f"{where}: {first['msg']}"


class ExplorerNodeSource:
    """Every node an explorer lists, as offers (a :class:`zgrid.client.NodeSource`).

    ``url`` is the explorer's base URL (its API answers ``/nodes`` there); ``without`` is
    told to the user when the explorer fails: how to plan without it; ``ledger_height``
    gives the height of the ledger it indexes, to wait up to ``catch_up`` seconds for the
    explorer to reach it before reading.
    """

    kind = "explorer"

    def __init__(
        self,
        url: str,
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        timeout: float = DEFAULT_TIMEOUT,
        without: str = "",
        ledger_height: Callable[[], Awaitable[int]] | None = None,
        catch_up: float = CATCH_UP,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {PAGE_SIZE}, got {page_size}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be 1 or more, got {max_pages}")
        self.url = url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages
        self.timeout = timeout
        self.without = without
        self.ledger_height = ledger_height
        self.catch_up = catch_up

    @property
    def description(self) -> str:
        return f"the explorer at {self.url}"

    async def offers(self) -> list[NodeOffer]:
        """A snapshot of every node, ordered by node id. Farms are read after the nodes so
        every node's farm is among them (farms are never removed)."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
            if self.ledger_height is not None:
                await self._wait_for(http, await self.ledger_height())
            nodes = await self._read_all(http, "nodes", _Node)
            farms = await self._read_all(http, "farms", _Farm)
        return _offers(nodes, farms, self.url)

    def _unavailable(self, what: str) -> ExplorerUnavailable:
        hint = f"; {self.without}" if self.without else ""
        return ExplorerUnavailable(f"the explorer at {self.url} {what}{hint}")

    async def _wait_for(self, http: httpx.AsyncClient, height: int) -> None:
        """Until the explorer indexed the ledger to ``height`` (an explorer without
        ``/indexer``, as the grid proxy is, is read as it is)."""
        deadline = time.monotonic() + self.catch_up
        while True:
            answer = await self._get(http, "/indexer", {}, missing_ok=True)
            if answer is None:
                return
            try:
                indexer = _Indexer.model_validate(answer.document)
            except ValidationError as exc:
                raise InvalidAnswer(
                    f"the explorer's /indexer ({self.url}): {_problem(exc)}"
                ) from None
            if indexer.height >= height:
                return
            if time.monotonic() > deadline:
                said = f" ({indexer.error[:_ERROR_TEXT]})" if indexer.error else ""
                raise self._unavailable(
                    f"has indexed the ledger to height {indexer.height}, not yet to its head "
                    f"{height} after {self.catch_up:g} s{said}"
                )
            await asyncio.sleep(_CATCH_UP_POLL)

    async def _get(
        self,
        http: httpx.AsyncClient,
        path: str,
        params: dict[str, Any],
        *,
        missing_ok: bool = False,
    ) -> _Got | None:
        """The JSON body of ``path`` (None when it is not found and ``missing_ok``); an
        error answer is ExplorerUnavailable, a body too large or not JSON InvalidAnswer."""
        what = f"{path} page {params['page']}" if "page" in params else path
        try:
            async with http.stream("GET", f"{self.url}{path}", params=params) as answer:
                body = bytearray()
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        raise InvalidAnswer(
                            f"the explorer at {self.url} answered more than "
                            f"{MAX_PAGE_BYTES} bytes for {what}"
                        )
        except httpx.HTTPError as exc:
            raise self._unavailable(
                f"cannot be reached ({type(exc).__name__}: {str(exc) or 'no answer'})"
            ) from None
        if missing_ok and answer.status_code == 404:
            return None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        # An error body is {"error": "…"} and nothing else (/indexer has an error field too).
        message = (
            document["error"]
            if isinstance(document, dict) and list(document) == ["error"]
            else None
        )
        if answer.status_code != 200 or message is not None:
            said = (
                str(message)[:_ERROR_TEXT]
                if message is not None
                else f"HTTP {answer.status_code} {answer.reason_phrase}"
            )
            raise self._unavailable(f"answered {path} with an error: {said}")
        if document is None:
            raise InvalidAnswer(f"the explorer's {what} is not JSON ({self.url})")
        return _Got(document, answer.headers.get("count"))

    async def _read_all(self, http: httpx.AsyncClient, kind: str, row: type[_Row]) -> list[_Row]:
        most = self.max_pages * self.page_size
        rows: dict[int, _Row] = {}
        for number in range(1, self.max_pages + 1):
            params = {"page": number, "size": self.page_size, "ret_count": "true"}
            got = await self._get(http, f"/{kind}", params)
            assert got is not None
            document, count_header = got.document, got.count
            where = f"the explorer's /{kind} page {number}"
            if not isinstance(document, list):
                raise InvalidAnswer(f"{where} is not a list ({self.url})")
            count = _count(count_header)
            if count is None:
                raise InvalidAnswer(
                    f"{where} has no valid count header (got {count_header!r:.40}; {self.url})"
                )
            if count > most:
                raise InvalidAnswer(
                    f"the explorer at {self.url} lists {count} {kind}, more than the {most} "
                    f"this client reads ({self.max_pages} pages of {self.page_size})"
                )
            if len(document) > self.page_size:
                raise InvalidAnswer(
                    f"the explorer answered {len(document)} {kind} on a page of "
                    f"{self.page_size} ({self.url})"
                )
            for index, item in enumerate(document):
                try:
                    parsed = row.model_validate(item)
                except ValidationError as exc:
                    raise InvalidAnswer(f"{where} item {index}: {_problem(exc)}") from None
                # A row added while paging can shift another onto the next page: keep one.
                rows.setdefault(parsed.key, parsed)
            if len(document) < self.page_size or len(rows) >= count:
                return [rows[key] for key in sorted(rows)]
        raise InvalidAnswer(
            f"the explorer at {self.url} lists more {kind} than the {most} this client reads "
            f"({self.max_pages} pages of {self.page_size})"
        )


def _count(header: str | None) -> int | None:
    if header is None or not header.isascii() or not header.isdigit() or len(header) > 20:
        return None
    return int(header)


def _offers(nodes: Sequence[_Node], farms: Sequence[_Farm], url: str) -> list[NodeOffer]:
    by_id = {farm.farmId: farm for farm in farms}
    offers = []
    for node in nodes:
        farm = by_id.get(node.farmId)
        if farm is None:
            raise InvalidAnswer(
                f"node {node.nodeId} is in farm {node.farmId}, which the explorer at {url} "
                "does not list"
            )
        total, free = node.total_resources, node.free_resources
        offers.append(
            NodeOffer(
                node_id=node.nodeId,
                twin_id=node.twinId,
                farm_id=farm.farmId,
                farm_name=farm.name,
                status=node.status,
                total=total_capacity(total, len(farm.publicIps)),
                free=free_capacity(free, node.farm_free_ips),
                country=node.country,
                city=node.city,
                certified=node.certificationType == "Certified",
                pricing_policy_id=farm.pricingPolicyId,
                rented_by=node.rentedByTwinId,
                domain=gateway_domain(node.publicConfig.ipv4, node.publicConfig.domain),
            )
        )
    return offers


def without_explorer(network: NetworkConfig) -> str:
    """How to plan on ``network`` from its ledger instead: the command that configures it
    again without its explorer."""
    hub = f" --hub {network.hub}" if network.hub else ""
    identity = f" --identity {network.identity}" if network.identity != "default" else ""
    return (
        f"to plan from the ledger instead: `zgrid network add {network.name} --ledger "
        f"{network.ledger}{hub}{identity} --force` (without --explorer)"
    )


def network_explorer(
    network: NetworkConfig, *, ledger_height: Callable[[], Awaitable[int]] | None = None
) -> ExplorerNodeSource | None:
    """The explorer source of ``network`` (waiting for it to index the network's ledger up
    to ``ledger_height()``), None when the network configures no explorer."""
    if network.explorer is None:
        return None
    return ExplorerNodeSource(
        network.explorer, without=without_explorer(network), ledger_height=ledger_height
    )
