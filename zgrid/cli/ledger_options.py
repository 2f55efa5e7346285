"""Options shared by the commands that talk to a ledger or a hub, and the client they build.

Where a ledger or hub URL comes from, one rule for every command: the flag, else its
environment variable ($ZGRID_LEDGER, $ZGRID_HUB), else the current network's URL (read
from the store's clear config.json: no passphrase), else the command's own default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

import typer

from zgrid.cli.context import CliSettings
from zgrid.cli.store_access import current_network, signing_identity

if TYPE_CHECKING:
    from zgrid.chain import SyncChainClient

__all__ = [
    "DEFAULT_HUB",
    "DEFAULT_LEDGER",
    "HubOption",
    "JsonOption",
    "LedgerOption",
    "check_ledger_url",
    "hub_from_network",
    "ledger_client",
    "ledger_from_network",
]

DEFAULT_LEDGER = "http://127.0.0.1:8700"
DEFAULT_HUB = "http://127.0.0.1:8780"


def _from_network(
    ctx: typer.Context, name: str | None, value: str | None, field: Literal["ledger", "hub"]
) -> str | None:
    """``value`` unless it is the parameter's default: then the current network's ``field``.

    A value from the command line or the environment wins; without a current network (or
    a network without a hub) the command's own default stays.
    """
    source = ctx.get_parameter_source(name) if name is not None else None
    # Compared by name: typer carries its own copy of click's enum.
    if ctx.resilient_parsing or source is None or source.name not in ("DEFAULT", "DEFAULT_MAP"):
        return value
    if ctx.find_object(CliSettings) is None:
        return value  # a command group run on its own (as tests do): no store to read
    network = current_network(ctx)
    found = None if network is None else getattr(network, field)
    return value if found is None else str(found)


def ledger_from_network(
    ctx: typer.Context, param: typer.CallbackParam, value: str | None
) -> str | None:
    """Option callback: the ledger URL by the rule in this module's docstring."""
    return _from_network(ctx, param.name, value, "ledger")


def hub_from_network(
    ctx: typer.Context, param: typer.CallbackParam, value: str | None
) -> str | None:
    """Option callback: the hub URL by the rule in this module's docstring."""
    return _from_network(ctx, param.name, value, "hub")


_LEDGER_HELP = (
    "URL of the ledger's HTTP API; default: $ZGRID_LEDGER, else the current network's "
    "ledger (`zgrid network use`), else"
)
_HUB_HELP = (
    "URL of the flist hub; default: $ZGRID_HUB, else the current network's hub "
    "(`zgrid network use`), else"
)

LedgerOption = Annotated[
    str,
    typer.Option(
        "--ledger",
        envvar="ZGRID_LEDGER",
        metavar="URL",
        help=f"{_LEDGER_HELP} {DEFAULT_LEDGER}.",
        show_default=False,
        callback=ledger_from_network,
    ),
]
HubOption = Annotated[
    str,
    typer.Option(
        "--hub",
        envvar="ZGRID_HUB",
        metavar="URL",
        help=f"{_HUB_HELP} {DEFAULT_HUB}.",
        show_default=False,
        callback=hub_from_network,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@contextmanager
def ledger_client(ctx: typer.Context, url: str, *, sign: bool) -> Iterator[SyncChainClient]:
    """A client for ``url``; with ``sign`` it signs as the store's identity (unlocked)."""
    check_ledger_url(url)
    from zgrid.chain import SyncChainClient  # noqa: PLC0415  # the ledger's client is heavy: load it on use

    identity = signing_identity(ctx) if sign else None
    client = SyncChainClient(url, identity=identity)
    try:
        yield client
    finally:
        client.close()


def check_ledger_url(url: str) -> None:
    """Refuse, as wrong usage, a ledger URL that is not http(s)://HOST[:PORT][/...]."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # reading the port parses it: a bad one raises here
    except ValueError as exc:
        raise typer.BadParameter(f"not a URL: {url!r} ({exc})", param_hint="--ledger") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(f"expected http://HOST:PORT, got {url!r}", param_hint="--ledger")
