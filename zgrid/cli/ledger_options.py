"""Options shared by the commands that talk to a ledger, and the client they build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from zgrid.cli.store_access import signing_identity

if TYPE_CHECKING:
    from zgrid.chain import SyncChainClient

__all__ = ["DEFAULT_LEDGER", "JsonOption", "LedgerOption", "check_ledger_url", "ledger_client"]

DEFAULT_LEDGER = "http://127.0.0.1:8700"

LedgerOption = Annotated[
    str,
    typer.Option(
        "--ledger", envvar="ZGRID_LEDGER", help="URL of the ledger's HTTP API.", show_default=True
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
