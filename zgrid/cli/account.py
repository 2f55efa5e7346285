"""`zgrid account`: balances, transfers and the dev faucet."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console
from zgrid.cli.store_access import own_address
from zgrid.identity import public_key_from_address

app = typer.Typer(help="Balances, transfers and the dev faucet.", no_args_is_help=True)


def _amount(text: str) -> int:
    from zgrid.chain import parse_tokens  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    try:
        units = parse_tokens(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="AMOUNT") from exc
    if units <= 0:
        raise typer.BadParameter("the amount must be more than 0", param_hint="AMOUNT")
    return units


def _format_tokens(units: int) -> str:
    from zgrid.chain import format_tokens  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    return format_tokens(units)


def _tokens(units: int) -> int | float:
    """Whole tokens as a JSON number (exact amounts are in the *_units fields)."""
    text = _format_tokens(units)
    return float(text) if "." in text else int(text)


def _balance_json(account: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": account["address"],
        "free": _tokens(account["free"]),
        "reserved": _tokens(account["reserved"]),
        "free_units": account["free"],
        "reserved_units": account["reserved"],
        "nonce": account["nonce"],
    }


@app.command()
def balance(
    ctx: typer.Context,
    address: Annotated[
        str | None, typer.Argument(help="Account address; default: your identity.")
    ] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Show an account's free and reserved balance in tokens."""
    if address is None:
        address = own_address(ctx)
    public_key_from_address(address)
    with ledger_client(ctx, ledger, sign=False) as client:
        account = client.account(address.lower())
    if as_json:
        emit_json(_balance_json(account))
    else:
        out_console.print(
            f"{account['address']}: {_format_tokens(account['free'])} free, {_format_tokens(account['reserved'])} reserved"
        )


@app.command()
def transfer(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Address to pay.")],
    amount: Annotated[str, typer.Argument(help="Tokens, up to 7 decimals.")],
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Send tokens to another account and wait until the transfer is in a block."""
    public_key_from_address(to)
    units = _amount(amount)
    with ledger_client(ctx, ledger, sign=True) as client:
        result = client.transfer(to.lower(), units)
    if as_json:
        emit_json({"hash": result["hash"], "height": result["height"], "amount_units": units})
    else:
        out_console.print(
            f"sent {_format_tokens(units)} tokens to {to} in block {result['height']}"
        )


@app.command()
def faucet(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="Tokens to ask for.")] = "1000",
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Get tokens from a dev chain's faucet."""
    units = _amount(amount)
    with ledger_client(ctx, ledger, sign=True) as client:
        result = client.faucet(units)
    if as_json:
        emit_json({"hash": result["hash"], "height": result["height"], "amount_units": units})
    else:
        out_console.print(f"received {_format_tokens(units)} tokens in block {result['height']}")
