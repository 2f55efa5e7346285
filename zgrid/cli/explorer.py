"""`zgrid explorer`: index a ledger into SQLite or PostgreSQL and serve the grid proxy's API
and the explorer's web pages."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, LedgerOption
from zgrid.cli.output import emit_json, err_console, out_console, term_as_interrupt

if TYPE_CHECKING:
    from zgrid.explorer import ExplorerSettings, IndexerStatus

app = typer.Typer(
    help="Index the ledger and serve the grid's nodes, farms, contracts and bills.",
    no_args_is_help=True,
)

Database = Annotated[
    str,
    typer.Option(
        "--db",
        help="sqlite:///path/to/explorer.db (embedded, the default) or "
        "postgresql://user@host:port/database.",
    ),
]
Rebuild = Annotated[
    bool, typer.Option("--rebuild", help="Empty the database first and index from genesis.")
]
Validator = Annotated[
    str | None,
    typer.Option(
        "--validator",
        help="The validator's hex public key to trust; refuse a ledger signed by another.",
    ),
]
Batch = Annotated[
    int, typer.Option("--batch", min=1, max=1000, help="Blocks read from the ledger at once.")
]
DEFAULT_DB = "sqlite:///explorer.db"


def _settings(
    ledger: str,
    db: str,
    *,
    listen: str = "127.0.0.1:8800",
    rebuild: bool = False,
    validator: str | None = None,
    batch: int = 100,
) -> ExplorerSettings:
    from zgrid.chain import parse_listen  # noqa: PLC0415  # heavy packages load on use
    from zgrid.explorer import ExplorerSettings, database_url  # noqa: PLC0415

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from exc
    if validator is not None and (
        len(validator) != 64 or any(c not in "0123456789abcdef" for c in validator)
    ):
        raise typer.BadParameter("a validator is 64 hex digits", param_hint="--validator")
    database_url(db)  # refuses a database URL of another kind, naming the two kinds
    return ExplorerSettings(
        ledger=ledger.rstrip("/"),
        database=db,
        host=host,
        port=port,
        rebuild=rebuild,
        validator=validator,
        batch=batch,
    )


@app.command()
def run(
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    db: Database = DEFAULT_DB,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the API and the pages.")
    ] = "127.0.0.1:8800",
    rebuild: Rebuild = False,
    validator: Validator = None,
    batch: Batch = 100,
) -> None:
    """Follow the ledger into the database and serve the API and pages until interrupted."""
    import zgrid.explorer  # noqa: PLC0415  # the explorer's packages are heavy: load on use

    settings = _settings(
        ledger, db, listen=listen, rebuild=rebuild, validator=validator, batch=batch
    )

    def ready(port: int, status: IndexerStatus) -> None:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        err_console.print(
            f"explorer of {settings.ledger} listening on http://{host}:{port} "
            f"(indexed to height {status.height})"
        )

    signal.signal(signal.SIGTERM, term_as_interrupt)
    try:
        asyncio.run(zgrid.explorer.serve(settings, on_ready=ready))
    except KeyboardInterrupt:
        err_console.print("explorer stopped")


@app.command()
def index(
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    db: Database = DEFAULT_DB,
    rebuild: Rebuild = False,
    validator: Validator = None,
    batch: Batch = 100,
    until: Annotated[
        int | None,
        typer.Option("--until", min=0, help="Stop after this height (default: the ledger's head)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Index every block the ledger has now into the database, then exit."""
    from rich.progress import (  # noqa: PLC0415  # only this command draws a progress bar
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    import zgrid.explorer  # noqa: PLC0415

    settings = _settings(ledger, db, rebuild=rebuild, validator=validator, batch=batch)
    with Progress(
        TextColumn("indexing blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("index", total=None)

        def advance(status: IndexerStatus) -> None:
            last = status.ledger_height if until is None else min(until, status.ledger_height)
            progress.update(task, completed=status.height + 1, total=last + 1)

        status = asyncio.run(zgrid.explorer.index_once(settings, until=until, on_block=advance))
    document = {
        "height": status.height,
        "events": status.events,
        "ledger_height": status.ledger_height,
    }
    if as_json:
        emit_json(document)
    else:
        out_console.print(
            f"indexed to height {status.height} ({status.events} events); "
            f"the ledger is at {status.ledger_height}"
        )
