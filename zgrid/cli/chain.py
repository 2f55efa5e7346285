"""`zgrid chain`: create, run, inspect and verify a ledger; move a dev chain's time ahead."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zgrid.cli.durations import parse_duration
from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, err_console, out_console, term_as_interrupt

if TYPE_CHECKING:
    from zgrid.chain import Ledger

app = typer.Typer(help="Create, run, inspect and verify a ledger.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data", help="The chain's data directory.")]


@app.command()
def init(
    data: DataDir,
    dev: Annotated[bool, typer.Option("--dev", help="A development chain with a faucet.")] = False,
    chain_id: Annotated[str, typer.Option("--chain-id", help="Name of the network.")] = "zgrid-dev",
    as_json: JsonOption = False,
) -> None:
    """Write a genesis and a validator key into DATA."""
    from zgrid.chain import format_tokens, init_dev_chain  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    if not dev:
        raise typer.BadParameter(
            "only dev chains can be created here for now; pass --dev", param_hint="--dev"
        )
    genesis = init_dev_chain(data, chain_id=chain_id)
    document = {
        "chain_id": genesis.chain_id,
        "validator": genesis.validator,
        "faucet": genesis.faucet,
        "supply": format_tokens(genesis.supply),
        "data": str(data),
    }
    if as_json:
        emit_json(document)
    else:
        out_console.print(f"dev chain {genesis.chain_id!r} created in {data}")
        out_console.print(f"validator: {genesis.validator}")
        out_console.print(f"run it with: zgrid chain run --data {data}")


@app.command()
def run(
    data: DataDir,
    *,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the HTTP API.")
    ] = "127.0.0.1:8700",
    block_time: Annotated[
        float, typer.Option("--block-time", min=0.05, max=60.0, help="Seconds between blocks.")
    ] = 1.0,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Connections served at once; more get 503."),
    ] = 1024,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            min=0.1,
            help="Seconds a connection may take to send a request's headers before it is closed.",
        ),
    ] = 10.0,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=1.0,
            max=1_000_000.0,
            help="Ledger time runs this many times faster than the clock (dev chains only: "
            "3600 makes an hour of billing a second).",
        ),
    ] = 1.0,
) -> None:
    """Run the validator: produce blocks and serve the API until interrupted (holds the terminal)."""
    import zgrid.chain  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    try:
        host, port = zgrid.chain.parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from exc

    def ready(ledger: Ledger, bound_port: int) -> None:
        head = ledger.head.header
        address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        err_console.print(
            f"ledger {ledger.chain_id!r} at height {head.height} listening on "
            f"http://{address} (block time {block_time} s"
            + (f", ledger time x{time_scale:g}" if time_scale != 1.0 else "")
            + ")"
        )

    # The server shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal;
    # by then every accepted transaction is in a block, so it is a clean stop.
    signal.signal(signal.SIGTERM, term_as_interrupt)
    try:
        # Through the package attribute, so the web server is imported only by this command.
        asyncio.run(
            zgrid.chain.serve(
                data,
                host=host,
                port=port,
                block_time=block_time,
                max_connections=max_connections,
                header_timeout=header_timeout,
                time_scale=time_scale,
                on_ready=ready,
            )
        )
    except KeyboardInterrupt:
        err_console.print("ledger stopped")


@app.command()
def status(
    ctx: typer.Context, ledger: LedgerOption = DEFAULT_LEDGER, as_json: JsonOption = False
) -> None:
    """Show the chain head of a running ledger."""
    with ledger_client(ctx, ledger, sign=False) as client:
        head = client.head()
    if as_json:
        emit_json(head)
        return
    out_console.print(f"chain {head['chain_id']!r}: height {head['height']}, block {head['hash']}")
    out_console.print(
        f"state commitment {head['state_commitment']}, ledger time {head['timestamp']}"
    )


@app.command()
def verify(data: DataDir, as_json: JsonOption = False) -> None:
    """Replay the whole block log from genesis and check it reaches the stored state."""
    from rich.progress import (  # noqa: PLC0415  # only this command draws a progress bar
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from zgrid.chain import format_tokens, verify_chain  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    with Progress(
        TextColumn("replaying blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("replay", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = verify_chain(data, progress=advance)
    document = {
        "height": report.height,
        "state_commitment": report.state_commitment,
        "transactions": report.transactions,
        "supply": format_tokens(report.supply),
        "minted": format_tokens(report.minted),
        "burned": format_tokens(report.burned),
        "ok": True,
    }
    if as_json:
        emit_json(document)
    else:
        out_console.print(
            f"verified {report.height + 1} blocks and {report.transactions} transactions: "
            f"state commitment {report.state_commitment}, supply {document['supply']} tokens "
            f"(minted {document['minted']}, burned {document['burned']} since genesis)"
        )


MAX_ADVANCE = 366 * 86400  # seconds one dev.advance_time call may move ledger time


@app.command()
def advance(
    ctx: typer.Context,
    duration: Annotated[
        str,
        typer.Argument(
            metavar="DURATION",
            help="How far: seconds, or a number with s, m, h or d (90s, 36h, 14d).",
        ),
    ],
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Move a dev chain's ledger time ahead by DURATION, from its next block on, so that
    bills, grace periods and farming periods fall due without waiting. Signed with your
    identity; a chain without a faucet refuses it."""
    seconds = parse_duration(duration, most=MAX_ADVANCE, param_hint="DURATION")
    with ledger_client(ctx, ledger, sign=True) as client:
        result = client.advance_time(seconds)
    document = {
        "seconds": seconds,
        "from_block": result["result"]["from_block"],
        "height": result["height"],
        "hash": result["hash"],
    }
    if as_json:
        emit_json(document)
    else:
        out_console.print(
            f"ledger time moves {seconds} s ahead from block {document['from_block']} "
            f"(the call is in block {result['height']})"
        )
