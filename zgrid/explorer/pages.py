"""The explorer's public web pages (no keys involved): grid statistics with charts, nodes
with the API's filters and sorting, a node, farms, contracts and their bills.

Rendered on the server from Jinja2 templates (autoescaped), charts as inline SVG: every
page works in a browser as it is, with no script and nothing fetched from elsewhere. The
filter forms are plain GET forms whose fields are the API's query parameters (sizes in
GiB where the API takes bytes), read by the same code as the API's routes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from zgrid.chain import format_tokens
from zgrid.explorer import listing, page_data
from zgrid.explorer.charts import (
    human_bytes,
    human_count,
    human_duration,
    human_period,
    human_time,
)
from zgrid.explorer.errors import BadQuery, ExplorerStoreError, NotIndexed
from zgrid.explorer.node_query import NODE_FILTERS, NODE_SORTS, NodeQuery, node_json
from zgrid.explorer.params import Limit, Params

if TYPE_CHECKING:
    from zgrid.explorer.api import ExplorerView

__all__ = ["GIB", "NODE_PAGE_SORTS", "install_pages", "templates"]

HERE = Path(__file__).parent
GIB = 1024**3
MAX_GIB = 2.0**33  # 8 EiB: beyond any node's resources and within the API's range
# Page fields in GiB and the API's filters (in bytes) they become.
_GIB_FILTERS = {"free_memory": "free_mru", "free_disk": "free_sru", "free_hdd": "free_hru"}
NODE_PAGE_SORTS = {
    "node_id": "node id",
    "farm_id": "farm",
    "country": "country",
    "status": "status",
    "uptime": "uptime",
    "total_cru": "CPU cores",
    "free_mru": "free memory",
    "free_sru": "free SSD",
    "free_hru": "free HDD",
}
CONTRACT_PAGE_SORTS = {
    "contract_id": "contract id",
    "twin_id": "twin",
    "state": "state",
    "type": "type",
    "created_at": "created",
}
FARM_PAGE_SORTS = {"farm_id": "farm id", "name": "name", "free_ips": "free public IPs"}
_HISTORY_DAYS = {1: "a day", 7: "a week", 30: "30 days", 365: "a year", 0: "all"}


def templates() -> Environment:
    """The pages' templates, autoescaped, with the number formats as filters."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        bytes=human_bytes,
        count=human_count,
        duration=human_duration,
        time=human_time,
        period=human_period,
        tokens=lambda units: format_tokens(int(units)),
        usd=lambda units: format_tokens(int(units)),  # units USD: 7 decimals too
        percent=lambda part, whole: 0.0 if not whole else max(0.0, min(100.0, part / whole * 100)),
    )
    environment.globals.update(href=href)
    return environment


def href(path: str, params: Mapping[str, str], **changes: object) -> str:
    """``path`` with the query ``params`` after ``changes`` (None drops a name)."""
    merged: dict[str, str] = dict(params)
    for name, value in changes.items():
        if value is None or value == "":
            merged.pop(name, None)
        else:
            merged[name] = str(value)
    query = urlencode([(name, value) for name, value in merged.items() if value != ""])
    return f"{path}?{query}" if query else path


def _given(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The query's non-empty values, the first of each name (what the form shows)."""
    given: dict[str, str] = {}
    for name, value in items:
        if value != "":
            given.setdefault(name, value)
    return given


def _paging(limit: Limit, count: int, given: Mapping[str, str]) -> dict[str, Any]:
    pages = max(1, math.ceil(count / limit.size))
    return {"page": limit.page, "pages": pages, "count": count, "size": limit.size, "given": given}


def node_filters(items: list[tuple[str, str]]) -> tuple[Params, Limit]:
    """The nodes page's query as the API's ``/nodes`` parameters: sizes in GiB become
    bytes (rounded up: "at least"), the rest passes through; counting is always on."""
    page = Params(items, NODE_FILTERS | _GIB_FILTERS.keys())  # names and GiB values checked
    forwarded = [
        (name, value)
        for name, value in items
        if value != "" and name not in _GIB_FILTERS and name != "ret_count"
    ]
    for name, api_name in _GIB_FILTERS.items():
        gib = page.number(name, high=MAX_GIB)
        if gib is not None:
            forwarded.append((api_name, str(math.ceil(gib * GIB))))
    params = Params([*forwarded, ("ret_count", "true")], NODE_FILTERS)
    return params, params.limit(NODE_SORTS)


class _Pages:
    def __init__(self, view: ExplorerView) -> None:
        self.view = view
        self.environment = templates()

    def render(self, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        position = self.view.position()
        context.setdefault("section", "")
        html = self.environment.get_template(name).render(
            indexed_height=-1 if position is None else position.height,
            indexed_time=0 if position is None else position.timestamp,
            **context,
        )
        return HTMLResponse(html, status_code=code)

    def read(self, action: Callable[[Any], Any]) -> Any:
        with self.view.store.reading() as connection:
            return action(connection)

    def guarded(self, request: Request, build: Callable[[], HTMLResponse]) -> HTMLResponse:
        """The page, or an HTML page saying what was wrong (the API's handlers answer JSON);
        a bad filter leads back to the same page without its query."""
        try:
            return build()
        except BadQuery as exc:
            return self.error(400, "Bad filter", str(exc), back=request.url.path)
        except NotIndexed as exc:
            return self.error(404, "Not found", str(exc))
        except ExplorerStoreError:
            return self.error(503, "Unavailable", "the explorer's database cannot be read now")

    def error(self, status: int, title: str, message: str, back: str = "/explorer") -> HTMLResponse:
        return self.render(
            "error.html",
            status,
            title=f"{title} ({status})",
            message=message,
            status=status,
            back=back,
        )

    # -- the pages

    def statistics(self, request: Request) -> HTMLResponse:
        params = Params(request.query_params.multi_items(), {"days"})
        days = params.integer("days", high=36500)
        days = 30 if days is None else days
        now = self.view.now()
        data = self.read(lambda c: page_data.statistics(c, now, days))
        return self.render(
            "stats.html",
            **data,
            days=days,
            day_choices=_HISTORY_DAYS,
            title="Grid statistics",
            section="stats",
        )

    def nodes(self, request: Request) -> HTMLResponse:
        items = request.query_params.multi_items()
        params, limit = node_filters(items)
        query, genesis = NodeQuery(self.view.now()), self.view.genesis()

        def read(connection: Any) -> dict[str, Any]:
            rows, count = query.page(connection, params, limit)
            return {
                "nodes": [node_json(row, genesis) for row in rows],
                "count": count or 0,
                "countries": page_data.countries(connection),
                "farms": page_data.farm_names(connection),
            }

        data = self.read(read)
        given = _given(items)
        given.pop("ret_count", None)
        return self.render(
            "nodes.html",
            nodes=data["nodes"],
            countries=data["countries"],
            farms=data["farms"],
            given=given,
            sorts=NODE_PAGE_SORTS,
            paging=_paging(limit, data["count"], given),
            title="Nodes",
            section="nodes",
        )

    def node(self, text: str) -> HTMLResponse:
        node_id = _id(text, "node")
        query, genesis = NodeQuery(self.view.now()), self.view.genesis()

        def read(connection: Any) -> dict[str, Any]:
            node = node_json(query.one(connection, node_id), genesis)
            limit = Limit(size=100, ret_count=True, sort_by="contract_id", descending=True)
            on_node = Params([("node_id", str(node_id))], listing.CONTRACT_FILTERS)
            contracts, count = listing.contracts_page(connection, on_node, limit)
            return {"node": node, "contracts": contracts, "contract_count": count or 0}

        data = self.read(read)
        return self.render(
            "node.html", **data, title=f"Node {node_id}", section="nodes", now=self.view.now()
        )

    def farms(self, request: Request) -> HTMLResponse:
        items = request.query_params.multi_items()
        params = Params(
            [*((k, v) for k, v in items if k != "ret_count"), ("ret_count", "true")],
            listing.FARM_FILTERS,
        )
        limit = params.limit(listing.FARM_SORTS)
        now = self.view.now()

        def read(connection: Any) -> dict[str, Any]:
            farms, count = listing.farms_page(connection, params, limit, now)
            counts = page_data.farm_node_counts(connection, now, [f["farmId"] for f in farms])
            return {"farms": farms, "count": count or 0, "node_counts": counts}

        data = self.read(read)
        given = _given(items)
        given.pop("ret_count", None)
        return self.render(
            "farms.html",
            farms=data["farms"],
            node_counts=data["node_counts"],
            given=given,
            sorts=FARM_PAGE_SORTS,
            paging=_paging(limit, data["count"], given),
            title="Farms",
            section="farms",
        )

    def farm(self, text: str) -> HTMLResponse:
        farm_id = _id(text, "farm")
        now, genesis = self.view.now(), self.view.genesis()
        query = NodeQuery(now)

        def read(connection: Any) -> dict[str, Any]:
            one = Params([("farm_id", str(farm_id))], listing.FARM_FILTERS)
            farms, _ = listing.farms_page(connection, one, Limit(), now)
            if not farms:
                raise NotIndexed(f"farm {farm_id} not found")
            nodes_of = Params([("farm_ids", str(farm_id))], NODE_FILTERS)
            rows, count = query.page(connection, nodes_of, Limit(size=100, ret_count=True))
            return {
                "farm": farms[0],
                "nodes": [node_json(row, genesis) for row in rows],
                "node_count": count or 0,
            }

        data = self.read(read)
        return self.render("farm.html", **data, title=data["farm"]["name"], section="farms")

    def contracts(self, request: Request) -> HTMLResponse:
        items = request.query_params.multi_items()
        params = Params(
            [*((k, v) for k, v in items if k != "ret_count"), ("ret_count", "true")],
            listing.CONTRACT_FILTERS,
        )
        limit = params.limit(listing.CONTRACT_SORTS)
        contracts, count = self.read(lambda c: listing.contracts_page(c, params, limit))
        given = _given(items)
        given.pop("ret_count", None)
        return self.render(
            "contracts.html",
            contracts=contracts,
            given=given,
            sorts=CONTRACT_PAGE_SORTS,
            paging=_paging(limit, count or 0, given),
            title="Contracts",
            section="contracts",
        )

    def contract(self, text: str, request: Request) -> HTMLResponse:
        contract_id = _id(text, "contract")
        items = request.query_params.multi_items()
        params = Params([(k, v) for k, v in items if k != "ret_count"], ())
        wanted = params.limit(listing.BILL_SORTS)
        limit = Limit(page=wanted.page, size=wanted.size, ret_count=True)

        def read(connection: Any) -> dict[str, Any]:
            contract = listing.one_contract(connection, contract_id)
            bills, count = listing.bills_page(connection, contract_id, limit)
            return {
                "contract": contract,
                "record": page_data.contract_record(connection, contract_id),
                "bills": bills,
                "totals": page_data.bill_totals(connection, contract_id),
                "count": count or 0,
            }

        data = self.read(read)
        given = _given(items)
        return self.render(
            "contract.html",
            **{key: value for key, value in data.items() if key != "count"},
            paging=_paging(limit, data["count"], given),
            title=f"Contract {contract_id}",
            section="contracts",
        )


def _id(text: str, what: str) -> int:
    """A page's id: anything but a whole number the index can hold is no such thing."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise NotIndexed(f"{what} {text!r} not found: ids are whole numbers")
    return int(text)


def install_pages(app: FastAPI) -> None:
    """Add the web pages to the explorer's app: ``/`` leads to ``/explorer``; pages stay
    out of the OpenAPI document (they are not the API)."""
    pages = _Pages(app.state.view)

    def page(path: str, handler: Callable[..., Response]) -> None:
        app.add_api_route(
            path, handler, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
        )

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/explorer", status_code=307)

    def statistics(request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.statistics(request))

    def nodes(request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.nodes(request))

    def node(node_id: str, request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.node(node_id))

    def farms(request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.farms(request))

    def farm(farm_id: str, request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.farm(farm_id))

    def contracts(request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.contracts(request))

    def contract(contract_id: str, request: Request) -> HTMLResponse:
        return pages.guarded(request, lambda: pages.contract(contract_id, request))

    def missing(rest: str) -> Response:
        if rest == "":
            return RedirectResponse("/explorer", status_code=307)
        return pages.error(404, "Not found", f"there is no page /explorer/{rest}")

    page("/explorer", statistics)
    page("/explorer/nodes", nodes)
    page("/explorer/nodes/{node_id}", node)
    page("/explorer/farms", farms)
    page("/explorer/farms/{farm_id}", farm)
    page("/explorer/contracts", contracts)
    page("/explorer/contracts/{contract_id}", contract)
    app.mount("/explorer/static", StaticFiles(directory=HERE / "static"), name="explorer-static")
    page("/explorer/{rest:path}", missing)
