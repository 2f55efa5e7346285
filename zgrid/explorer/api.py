"""The explorer's HTTP API: the grid proxy's routes, parameters, JSON, paging headers
and error answers (``{"error": "…"}``), so a grid-proxy client reads zgrid unchanged.

Reads run on worker threads, each on a connection of its own; status and health are
decided at the ledger time of the last block indexed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from zgrid import __version__
from zgrid.chain import Genesis
from zgrid.explorer import listing
from zgrid.explorer.errors import BadQuery, ExplorerError, ExplorerStoreError, NotIndexed
from zgrid.explorer.indexer import IndexerStatus
from zgrid.explorer.node_query import (
    NODE_FILTERS,
    NODE_SORTS,
    NodeQuery,
    nested_node_json,
    node_json,
)
from zgrid.explorer.params import LIMIT_NAMES, Limit, Params
from zgrid.explorer.store import ExplorerStore, Position

__all__ = ["ExplorerView", "create_app", "json_response"]

log = logging.getLogger(__name__)

I64_MAX = 2**63 - 1
Id = Annotated[int, Path(ge=0, le=I64_MAX)]
_IDENTITY_TTL = 5.0
_POSITION_TTL = 0.2


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


@dataclass
class ExplorerView:
    """What every request reads: the database, the chain it indexes, the indexer's state."""

    store: ExplorerStore
    status: IndexerStatus = field(default_factory=IndexerStatus)
    _genesis: Genesis | None = None
    _checked: float = 0.0
    _position: Position | None = None
    _read: float = -1.0
    _query: NodeQuery | None = None

    def genesis(self) -> Genesis | None:
        if self._genesis is None and time.monotonic() - self._checked > _IDENTITY_TTL:
            self._checked = time.monotonic()
            identity = self.store.identity()
            if identity is not None and identity.genesis:
                self._genesis = Genesis.model_validate_json(identity.genesis)
        return self._genesis

    def position(self) -> Position | None:
        """The last block indexed, read again at most every 0.2 s (a block takes longer)."""
        if time.monotonic() - self._read > _POSITION_TTL:
            self._position, self._read = self.store.position(), time.monotonic()
        return self._position

    def now(self) -> int:
        position = self.position()
        return 0 if position is None else position.timestamp

    def node_query(self) -> NodeQuery:
        """The node conditions at the time of the last block indexed (built once per block)."""
        now = self.now()
        query = self._query
        if query is None or query.now != now:
            query = self._query = NodeQuery(now)
        return query


def _paging(count: int | None, limit: Limit) -> dict[str, str]:
    if count is None:
        return {}
    return {
        "count": str(count),
        "size": str(limit.size),
        "pages": str(math.ceil(count / limit.size)),
    }


_BOOLEAN = {
    "ipv4",
    "ipv6",
    "domain",
    "dedicated",
    "in_dedicated_farm",
    "rentable",
    "rented",
    "healthy",
    "has_gpu",
    "ret_count",
    "randomize",
    "free",
    "node_certified",
}
_INTEGER_LISTS = {"farm_ids", "node_ids", "excluded"}
_TEXT = {
    "status",
    "node_status",
    "state",
    "type",
    "country",
    "country_contains",
    "city",
    "city_contains",
    "farm_name",
    "farm_name_contains",
    "certification_type",
    "name",
    "name_contains",
    "account_id",
    "relay",
    "public_key",
    "deployment_hash",
    "ip",
    "gateway",
    "sort_by",
    "sort_order",
    "stellar_address",
}


def _documented(names: frozenset[str], sorts: frozenset[str] = frozenset()) -> dict[str, Any]:
    """OpenAPI parameters for the query names a route reads itself."""
    parameters = []
    for name in sorted(names | LIMIT_NAMES):
        schema: dict[str, Any]
        if name in _BOOLEAN:
            schema = {"type": "boolean"}
        elif name in _INTEGER_LISTS:
            schema = {"type": "string", "description": "ids separated by commas, e.g. 1,2,3"}
        elif name == "sort_by":
            schema = {"type": "string", "enum": sorted(sorts)} if sorts else {"type": "string"}
        elif name == "sort_order":
            schema = {"type": "string", "enum": ["asc", "desc"]}
        elif name in _TEXT:
            schema = {"type": "string", "maxLength": 256}
        elif name == "balance":
            schema = {"type": "number", "minimum": 0}
        elif name == "size":
            schema = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
        elif name == "page":
            schema = {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}
        else:
            schema = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
        parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
    errors = {
        "400": {"description": "a parameter is malformed, out of range or unknown"},
        "503": {"description": "the explorer's database cannot be read"},
    }
    return {"parameters": parameters, "responses": errors}


def create_app(view: ExplorerView, *, pages: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """The explorer's API over ``view``; ``pages`` adds the web pages to the same app."""
    app = FastAPI(
        title="zgrid explorer",
        version=__version__,
        description="The grid as the ledger's events made it: nodes, farms, twins, contracts "
        "and their bills. Routes, parameters and answers follow the grid proxy of "
        "tfgrid-sdk-go; paging headers `count`, `size`, `pages` come with `ret_count=true`.",
    )
    app.state.view = view
    _install_errors(app)

    def read(action: Callable[[Any], Any]) -> Any:
        with view.store.reading() as connection:
            return action(connection)

    @app.get("/nodes", tags=["nodes"], openapi_extra=_documented(NODE_FILTERS, NODE_SORTS))
    def nodes(request: Request) -> Response:
        """Nodes with the grid proxy's filters, sorting and paging."""
        return _nodes(request, gateways=False)

    @app.get("/gateways", tags=["nodes"], openapi_extra=_documented(NODE_FILTERS, NODE_SORTS))
    def gateways(request: Request) -> Response:
        """Nodes that can serve gateways: a domain and a public IPv4 or IPv6."""
        return _nodes(request, gateways=True)

    def _nodes(request: Request, *, gateways: bool) -> Response:
        params = Params(request.query_params.multi_items(), NODE_FILTERS)
        limit = params.limit(NODE_SORTS)
        genesis, query = view.genesis(), view.node_query()
        rows, count = read(lambda c: query.page(c, params, limit, gateways=gateways))
        body = [node_json(row, genesis, limit.balance) for row in rows]
        return json_response(body, headers=_paging(count, limit))

    @app.get("/nodes/{node_id}", tags=["nodes"])
    def node(node_id: Id) -> Response:
        """One node, with its capacity nested as the grid proxy answers it."""
        query = view.node_query()
        row = read(lambda c: query.one(c, node_id))
        return json_response(nested_node_json(row, view.genesis()))

    @app.get("/gateways/{node_id}", tags=["nodes"])
    def gateway(node_id: Id) -> Response:
        query = view.node_query()
        row = read(lambda c: query.one(c, node_id, gateway=True))
        return json_response(nested_node_json(row, view.genesis()))

    @app.get("/nodes/{node_id}/status", tags=["nodes"])
    def node_status(node_id: Id) -> Response:
        query = view.node_query()
        row = read(lambda c: query.one(c, node_id))
        return json_response({"status": nested_node_json(row, None)["status"]})

    _listing_routes(app, view, read)
    if pages is not None:
        pages(app)
    return app


def _listing_routes(
    app: FastAPI, view: ExplorerView, read: Callable[[Callable[[Any], Any]], Any]
) -> None:
    def listed(
        names: frozenset[str],
        sorts: frozenset[str],
        action: Callable[[Any, Params, Limit], tuple[list[dict[str, Any]], int | None]],
    ) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            params = Params(request.query_params.multi_items(), names)
            limit = params.limit(sorts)
            items, count = read(lambda c: action(c, params, limit))
            return json_response(items, headers=_paging(count, limit))

        return handle

    farms = listed(
        listing.FARM_FILTERS,
        listing.FARM_SORTS,
        lambda c, p, lim: listing.farms_page(c, p, lim, view.now()),
    )
    app.get(
        "/farms",
        tags=["farms"],
        summary="Farms with the grid proxy's filters",
        openapi_extra=_documented(listing.FARM_FILTERS, listing.FARM_SORTS),
    )(farms)
    app.get(
        "/twins",
        tags=["twins"],
        summary="Twins",
        openapi_extra=_documented(listing.TWIN_FILTERS, listing.TWIN_SORTS),
    )(listed(listing.TWIN_FILTERS, listing.TWIN_SORTS, listing.twins_page))
    app.get(
        "/contracts",
        tags=["contracts"],
        summary="Contracts of every type",
        openapi_extra=_documented(listing.CONTRACT_FILTERS, listing.CONTRACT_SORTS),
    )(listed(listing.CONTRACT_FILTERS, listing.CONTRACT_SORTS, listing.contracts_page))
    app.get(
        "/public_ips",
        tags=["farms"],
        summary="Farms' public IPs",
        openapi_extra=_documented(listing.IP_FILTERS, listing.IP_SORTS),
    )(listed(listing.IP_FILTERS, listing.IP_SORTS, listing.public_ips_page))

    @app.get("/contracts/{contract_id}", tags=["contracts"])
    def contract(contract_id: Id) -> Response:
        return json_response(read(lambda c: listing.one_contract(c, contract_id)))

    @app.get(
        "/contracts/{contract_id}/bills",
        tags=["contracts"],
        openapi_extra=_documented(frozenset()),
    )
    def bills(contract_id: Id, request: Request) -> Response:
        """A contract's bills, oldest first."""
        params = Params(request.query_params.multi_items(), ())
        limit = params.limit(listing.BILL_SORTS)
        items, count = read(lambda c: listing.bills_page(c, contract_id, limit))
        return json_response(items, headers=_paging(count, limit))

    @app.get("/stats", tags=["stats"], openapi_extra=_documented(listing.STATS_FILTERS))
    def stats(request: Request) -> Response:
        """Totals of the grid; ``status`` counts only the nodes of those statuses."""
        params = Params(request.query_params.multi_items(), listing.STATS_FILTERS)
        now = view.now()
        return json_response(read(lambda c: listing.stats(c, params, now)))

    @app.get("/ping", tags=["explorer"])
    def ping() -> Response:
        return json_response({"ping": "pong"})

    @app.get("/version", tags=["explorer"])
    def version() -> Response:
        return json_response({"version": __version__})

    @app.get("/indexer", tags=["explorer"])
    def indexer() -> Response:
        """Where indexing stands: the last block stored and the ledger's head."""
        position = view.position()
        status = view.status
        return json_response(
            {
                "height": -1 if position is None else position.height,
                "block_hash": "" if position is None else position.block_hash,
                "timestamp": 0 if position is None else position.timestamp,
                "events": 0 if position is None else position.events,
                "ledger_height": status.ledger_height,
                "following": status.following,
                "error": status.error,
            }
        )


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(BadQuery)
    async def _bad_query(_: Request, exc: BadQuery) -> Response:
        return _error(400, str(exc))

    @app.exception_handler(NotIndexed)
    async def _not_found(_: Request, exc: NotIndexed) -> Response:
        return _error(404, str(exc))

    @app.exception_handler(ExplorerStoreError)
    async def _store(_: Request, exc: ExplorerStoreError) -> Response:
        log.error("%s", exc)
        return _error(503, "the explorer's database cannot be read now")

    @app.exception_handler(ExplorerError)
    async def _explorer(_: Request, exc: ExplorerError) -> Response:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return _error(400, "; ".join(problems) or "bad request")

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return json_response({"error": message}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _crashed(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__})")

    @app.middleware("http")
    async def _cors(request: Request, call_next: Callable[[Request], Any]) -> Response:
        # As the grid proxy does: any page may read the API, and its paging headers.
        response: Response = await call_next(request)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "*"
        return response
