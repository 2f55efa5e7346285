"""`zgrid zdb run`: a Zero-DB server with 0-db's flags (its data directories work in both)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zgrid.cli.output import err_console


def _size(text: str) -> int:
    from zgrid.zdb import ZdbError, parse_size  # noqa: PLC0415  # the server's package: load it on use

    try:
        return parse_size(text)
    except ZdbError as exc:
        raise typer.BadParameter(str(exc)) from None


app = typer.Typer(help="Zero-DB: the grid's key-value storage server.", no_args_is_help=True)


@app.command()
def run(
    *,
    data: Annotated[Path, typer.Option("--data", help="Data files root.")] = Path("./zdb-data"),
    index: Annotated[Path, typer.Option("--index", help="Index files root.")] = Path("./zdb-index"),
    listen: Annotated[
        str,
        typer.Option(
            "--listen", help="TCP address to listen on (:: is every IPv4 and IPv6 address)."
        ),
    ] = "::",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 9900,
    socket: Annotated[
        Path | None, typer.Option("--socket", help="Unix socket (then no TCP unless --dualnet).")
    ] = None,
    dualnet: Annotated[
        bool, typer.Option("--dualnet", help="Listen on TCP and the unix socket.")
    ] = False,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="user or seq for every namespace (default: per namespace)."),
    ] = None,
    datasize: Annotated[
        int,
        typer.Option(
            "--datasize",
            parser=_size,
            metavar="SIZE",
            help="Rotate data files at this size (k, M, G, T suffixes).",
        ),
    ] = "256M",  # type: ignore[assignment]  # typer runs the default through the parser
    maxsize: Annotated[
        int, typer.Option("--maxsize", min=0, help="Size limit of the default namespace in bytes.")
    ] = 0,
    admin: Annotated[
        str | None,
        typer.Option(
            "--admin",
            envvar="ZGRID_ZDB_ADMIN",  # kept out of the command line, which every user can read
            help="Admin password (without it everybody is admin).",
        ),
    ] = None,
    protect: Annotated[
        bool,
        typer.Option("--protect", help="The default namespace needs the admin password to write."),
    ] = False,
    sync: Annotated[
        bool, typer.Option("--sync", help="fsync before every reply that wrote.")
    ] = False,
    synctime: Annotated[
        int,
        typer.Option(
            "--synctime", min=0, help="fsync when this many seconds passed since the last one."
        ),
    ] = 0,
    hook: Annotated[
        str | None, typer.Option("--hook", help="Executable run on events (0-db's hook names).")
    ] = None,
    max_clients: Annotated[
        int,
        typer.Option(
            "--max-clients",
            min=1,
            help="Clients connected at once; more are refused with an error reply"
            " (lowered to what the descriptor limit allows).",
        ),
    ] = 10_000,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            min=0,
            metavar="SECONDS",
            help="Close clients that sent nothing for this long (0: never, as 0-db).",
        ),
    ] = 0.0,
    max_reply: Annotated[
        int,
        typer.Option(
            "--max-reply",
            parser=_size,
            metavar="SIZE",
            help="Largest single reply (an MGET, a KSCAN); larger ones are refused.",
        ),
    ] = "32M",  # type: ignore[assignment]  # typer runs the default through the parser
    max_pending: Annotated[
        int,
        typer.Option(
            "--max-pending",
            parser=_size,
            metavar="SIZE",
            help="Reply bytes all clients together may leave unread; beyond it, large"
            " replies wait until clients read.",
        ),
    ] = "256M",  # type: ignore[assignment]
) -> None:
    """Serve 0-db's protocol until SIGINT/SIGTERM; everything written reaches the files on the way out."""
    from zgrid.zdb import ServerOptions, run_server  # noqa: PLC0415  # the server's package: load it on use

    options = ServerOptions(
        data=data,
        index=index,
        listen=listen,
        port=port,
        socket=socket,
        dualnet=dualnet,
        mode=mode,
        datasize=datasize,
        maxsize=maxsize,
        admin=admin,
        protect=protect,
        sync=sync,
        synctime=synctime,
        hook=hook,
        max_clients=max_clients,
        idle_timeout=idle_timeout,
        max_reply=max_reply,
        max_pending=max_pending,
    )

    def ready(addresses: list[str]) -> None:
        err_console.print(f"zdb ready on {', '.join(addresses)} (data {data}, index {index})")

    run_server(options, on_ready=ready)
