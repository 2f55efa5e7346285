"""`zgrid hub run`: the flist hub, where twins publish flists and nodes fetch their blocks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, LedgerOption
from zgrid.cli.output import err_console

if TYPE_CHECKING:
    from zgrid.flist import hub as flist_hub

app = typer.Typer(help="The flist hub: publish, list and serve flists.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    # A group even with one command: `run` stays `run` wherever this app is mounted.
    pass


@app.command()
def run(
    *,
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
    uploads: Annotated[
        int, typer.Option("--uploads", min=1, help="Flist uploads taken at once (503 beyond).")
    ] = 8,
    uploads_per_twin: Annotated[
        int,
        typer.Option("--uploads-per-twin", min=1, help="Flist uploads of one twin at once (429)."),
    ] = 2,
    body_timeout: Annotated[
        float,
        typer.Option("--body-timeout", min=0.1, help="Seconds a request body may stall (408)."),
    ] = 30.0,
    checks: Annotated[
        int, typer.Option("--checks", min=1, help="Worker processes checking pushed flists.")
    ] = 2,
) -> None:
    """Serve the hub until SIGINT/SIGTERM (holds the terminal)."""
    import zgrid.chain  # noqa: PLC0415  # the ledger's package is heavy: load it on use
    from zgrid.flist import hub as flist_hub  # noqa: PLC0415  # the hub's package is heavy: load it on use

    try:
        host, port = zgrid.chain.parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from exc
    # Through the package attribute, so the web server is imported only by this command.
    options = flist_hub.HubOptions(
        data=data,
        ledger=ledger,
        host=host,
        port=port,
        blocks=blocks,
        public_url=public_url,
        uploads=flist_hub.UploadLimits(
            flists_total=uploads,
            flists_per_twin=uploads_per_twin,
            body_idle_timeout=body_timeout,
            checks=checks,
        ),
    )

    def ready(hub: flist_hub.Hub) -> None:
        err_console.print(
            f"hub listening on http://{host}:{port}, serving as {hub.public_url} "
            f"(blocks in {hub.store.url}, flists in {data})"
        )

    flist_hub.run_hub(options, on_ready=ready)
    err_console.print("hub stopped")
