"""`zgrid nodes`: the grid's nodes as the planner sees them, to find where to deploy.

The nodes come through the planner's own node source, so what is listed (free capacity,
status, certification, free public IPs) is what a plan is made from: the explorer with
--explorer, else the ledger with --ledger (or $ZGRID_LEDGER), else the current network's
explorer when it configures one, else its ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table
from rich.text import Text

from zgrid.cli.context import CliSettings
from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, check_ledger_url
from zgrid.cli.output import emit_json, out_console, table_console
from zgrid.cli.store_access import current_network

if TYPE_CHECKING:
    from zgrid.client import NodeOffer, NodeSource
    from zgrid.types import Capacity

__all__ = ["register"]

_RESOURCES = ("cru", "mru", "sru", "hru")
_MIN_FREE_KEYS = (*_RESOURCES, "ipv4")
_MAX_MIN_FREE = 256  # characters of --min-free
_STATUS_STYLE = {"up": "green", "down": "red", "standby": "yellow"}

FarmOption = Annotated[
    str | None,
    typer.Option("--farm", metavar="ID|NAME", help="Only the nodes of this farm (id or name)."),
]
CountryOption = Annotated[
    str | None, typer.Option("--country", metavar="NAME", help="Only the nodes in this country.")
]
UpOption = Annotated[bool, typer.Option("--up", help="Only the nodes that are up.")]
CertifiedOption = Annotated[
    bool, typer.Option("--certified", help="Only the nodes of certified farms.")
]
ExplorerOption = Annotated[
    str | None,
    typer.Option(
        "--explorer",
        metavar="URL",
        help="Read the nodes from this explorer [default: the current network's explorer, "
        "unless --ledger is given].",
        show_default=False,
    ),
]
MinFreeOption = Annotated[
    str | None,
    typer.Option(
        "--min-free",
        metavar="cru=N,mru=SIZE,...",
        help="Only the nodes with at least this much free: any of cru, mru, sru, hru, ipv4.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("nodes")(nodes)


def parse_min_free(text: str) -> dict[str, int]:
    """``"cru=1,mru=1GiB"`` -> {"cru": 1, "mru": 1073741824}; BadParameter naming the item."""
    from zgrid.client import parse_size  # noqa: PLC0415  # the client package is heavy: load it on use

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint="--min-free")

    if len(text) > _MAX_MIN_FREE:
        raise bad(f"{len(text)} characters long; at most {_MAX_MIN_FREE}")
    wanted: dict[str, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise bad(f"{item!r} is not key=value (e.g. mru=1GiB)")
        if key not in _MIN_FREE_KEYS:
            raise bad(f"unknown resource {key!r} in {item!r}; use {', '.join(_MIN_FREE_KEYS)}")
        if key in wanted:
            raise bad(f"{key} is given twice")
        value = value.strip()
        if key in ("cru", "ipv4"):
            if not value.isdigit() or not value.isascii():
                raise bad(f"{key} must be a whole number, got {value!r}")
            wanted[key] = int(value)
        else:
            try:
                wanted[key] = parse_size(value, what=key)
            except ValueError as exc:
                raise bad(str(exc)) from None
    if not wanted:
        raise bad("give at least one of cru, mru, sru, hru, ipv4 (e.g. cru=1,mru=1GiB)")
    return wanted


def _keeps(
    node: NodeOffer,
    *,
    farm: str | None,
    country: str | None,
    up: bool,
    certified: bool,
    min_free: dict[str, int],
) -> bool:
    """The planner's own tests of a node (farm by id or name, country, certified, free)."""
    if farm is not None:
        if farm.isdigit() and farm.isascii():
            if node.farm_id != int(farm):
                return False
        elif node.farm_name.casefold() != farm.casefold():
            return False
    if country is not None and node.country.casefold() != country.casefold():
        return False
    if up and node.status != "up":
        return False
    if certified and not node.certified:
        return False
    return all(getattr(node.free, key) >= least for key, least in min_free.items())


def size_text(value: int) -> str:
    """Bytes for people: exact in the largest unit dividing them, else one decimal."""
    from zgrid.client import format_size  # noqa: PLC0415  # the client package is heavy: load it on use

    exact = format_size(value)
    if value < 1024 or not exact.endswith(" B"):
        return exact
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value / 1024:.1f} KiB"


def _resources(capacity: Capacity) -> dict[str, int]:
    return {key: getattr(capacity, key) for key in _RESOURCES}


def node_document(node: NodeOffer) -> dict[str, Any]:
    """One node as ``zgrid nodes --json`` lists it (sizes in bytes)."""
    return {
        "node_id": node.node_id,
        "twin_id": node.twin_id,
        "farm_id": node.farm_id,
        "farm_name": node.farm_name,
        "status": node.status,
        "country": node.country,
        "city": node.city,
        "certified": node.certified,
        "total": _resources(node.total),
        "free": _resources(node.free),
        "public_ips": node.total.ipv4,
        "public_ips_free": node.free.ipv4,
        "rented_by": node.rented_by,
        "pricing_policy_id": node.pricing_policy_id,
    }


def _table(offers: list[NodeOffer]) -> Table:
    table = Table(box=None, pad_edge=False)
    for name in ("node", "farm", "location", "status"):
        table.add_column(name, no_wrap=True)
    for name in ("cru", "mru", "sru", "hru"):
        table.add_column(f"{name} free/total", justify="right", no_wrap=True)
    table.add_column("certified", no_wrap=True)
    table.add_column("ipv4 free", justify="right", no_wrap=True)
    for node in offers:
        place = ", ".join(part for part in (node.city, node.country) if part) or "-"
        farm = f"{node.farm_id} {node.farm_name}" if node.farm_name else str(node.farm_id)
        sizes = [
            f"{size_text(getattr(node.free, key))} / {size_text(getattr(node.total, key))}"
            for key in ("mru", "sru", "hru")
        ]
        table.add_row(
            str(node.node_id),
            Text(farm),
            Text(place),
            Text(node.status, style=_STATUS_STYLE.get(node.status, "")),
            f"{node.free.cru} / {node.total.cru}",
            *sizes,
            "yes" if node.certified else "no",
            f"{node.free.ipv4} / {node.total.ipv4}",
        )
    return table


def _source(ctx: typer.Context, ledger: str, explorer: str | None) -> tuple[str, str, bool]:
    """Where to read the nodes: ("explorer" | "ledger", URL, whether the explorer is the
    one of the network whose ledger ``ledger`` is), by the module's rule."""
    if explorer is not None:
        return "explorer", explorer, False
    given = ctx.get_parameter_source("ledger")
    # Compared by name: typer carries its own copy of click's enum.
    if given is not None and given.name in ("DEFAULT", "DEFAULT_MAP"):
        network = current_network(ctx) if ctx.find_object(CliSettings) is not None else None
        if network is not None and network.explorer is not None:
            return "explorer", network.explorer, True
    return "ledger", ledger, False


def _check_url(kind: str, url: str) -> None:
    """Refuse, as wrong usage, a ledger or explorer URL that is not http(s)://HOST[:PORT]."""
    if kind == "ledger":
        check_ledger_url(url)
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # reading the port parses it: a bad one raises here
    except ValueError as exc:
        raise typer.BadParameter(f"not a URL: {url!r} ({exc})", param_hint="--explorer") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(f"expected http://HOST:PORT, got {url!r}", param_hint="--explorer")


async def _read_offers(kind: str, url: str, ledger: str | None) -> list[NodeOffer]:
    """The offers of the ``kind`` source at ``url``; an explorer waits until it indexed
    ``ledger`` (its network's) up to that ledger's head."""
    from zgrid.chain import ChainClient  # noqa: PLC0415  # the ledger's client is heavy: load it on use
    from zgrid.client import LedgerNodeSource  # noqa: PLC0415

    if kind == "ledger":
        async with ChainClient(url) as chain:
            return await LedgerNodeSource(chain).offers()
    if ledger is None:
        return await _explorer(url).offers()
    async with ChainClient(ledger) as chain:

        async def height() -> int:
            return int((await chain.head())["height"])

        return await _explorer(url, height).offers()


def _explorer(url: str, height: Callable[[], Awaitable[int]] | None = None) -> NodeSource:
    from zgrid.client import ExplorerNodeSource  # noqa: PLC0415

    return ExplorerNodeSource(
        url,
        without="or list the ledger's nodes with `zgrid nodes --ledger URL`",
        ledger_height=height,
    )


def nodes(
    ctx: typer.Context,
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    explorer: ExplorerOption = None,
    farm: FarmOption = None,
    country: CountryOption = None,
    up: UpOption = False,
    certified: CertifiedOption = False,
    min_free: MinFreeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the grid's nodes: farm, place, status, free and total capacity, public IPs.

    The nodes as the planner sees them: from the current network's explorer if it has
    one, else its ledger (--explorer or --ledger choose).
    Exit codes: 0 listed (also when none is left), 1 the ledger or explorer failed,
    2 wrong usage.
    """
    kind, url, same_network = _source(ctx, ledger, explorer)
    _check_url(kind, url)
    wanted = parse_min_free(min_free) if min_free is not None else {}
    offers = [
        node
        for node in asyncio.run(_read_offers(kind, url, ledger if same_network else None))
        if _keeps(node, farm=farm, country=country, up=up, certified=certified, min_free=wanted)
    ]
    if as_json:
        emit_json([node_document(node) for node in offers])
        return
    filtered = farm is not None or country is not None or up or certified or bool(wanted)
    if not offers:
        which = "matching these filters " if filtered else ""
        out_console.print(f"no nodes {which}on the {kind} at {url}")
        return
    table_console().print(_table(offers))
    out_console.print(f"{len(offers)} node(s) on the {kind} at {url}")
