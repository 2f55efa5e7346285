"""`zgrid twin`: your identity on the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console
from zgrid.cli.store_access import own_address

app = typer.Typer(help="Your identity on the ledger (a twin).", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    relay: Annotated[str, typer.Option("--relay", help="Where messages for this twin go.")] = "",
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Create the twin of this machine's identity."""
    with ledger_client(ctx, ledger, sign=True) as client:
        twin_id = client.create_twin(relay)
    if as_json:
        emit_json({"twin_id": twin_id})
    else:
        out_console.print(f"created twin {twin_id}")


@app.command()
def show(
    ctx: typer.Context,
    twin_id: Annotated[int | None, typer.Argument(help="Twin id; default: your own twin.")] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Show a twin."""
    from zgrid.chain import NotFound  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    with ledger_client(ctx, ledger, sign=False) as client:
        if twin_id is None:
            address = own_address(ctx)
            twin = client.twin_of(address)
            if twin is None:
                raise NotFound(
                    f"account {address} has no twin yet (create one with `zgrid twin create`)"
                )
        else:
            twin = client.twin(twin_id)
    if as_json:
        emit_json(twin)
    else:
        out_console.print(
            f"twin {twin['id']}: account {twin['account']}, relay {twin['relay'] or '-'}"
        )
