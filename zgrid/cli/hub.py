"""`zgrid hub run`: the flist hub, where twins publish flists and nodes fetch their blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import zgrid.chain
from zgrid.cli.ledger_options import DEFAULT_LEDGER, LedgerOption
from zgrid.cli.output import err_console
from zgrid.flist import hub as flist_hub

app = typer.Typer(help="The flist hub: publish, list and serve flists.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    # A group even with one command: `run` stays `run` wherever this app is mounted.
    pass


@app.command()
def run(
    data: Annotated[Path, typer.Option("--data", help="The hub's data directory.")],
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the HTTP API.")
    ] = "127.0.0.1:8780",
    blocks: Annotated[
        str | None,
        typer.Option(
            "--blocks",
            help="Block store URL: dir:///path or zdb://host:port/ns.",
            show_default="dir://DATA/blocks",
        ),
    ] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The URL consumers reach the hub at; written into every pushed flist.",
            show_default="http://HOST:PORT",
        ),
    ] = None,
) -> None:
    """Serve the hub until SIGINT/SIGTERM."""
    try:
        host, port = zgrid.chain.parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from exc
    # Through the package attribute, so the web server is imported only by this command.
    options = flist_hub.HubOptions(
        data=data, ledger=ledger, host=host, port=port, blocks=blocks, public_url=public_url
    )

    def ready(hub: flist_hub.Hub) -> None:
        err_console.print(
            f"hub listening on http://{host}:{port}, serving as {hub.public_url} "
            f"(blocks in {hub.store.url}, flists in {data})"
        )

    flist_hub.run_hub(options, on_ready=ready)
    err_console.print("hub stopped")
