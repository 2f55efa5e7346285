"""`zgrid account`: balances, transfers, the dev faucet and the staking discount."""

from __future__ import annotations

from fractions import Fraction
from math import ceil
from typing import Annotated, Any

import typer

from zgrid.cli.amounts import USD_UNITS, tokens_text, usd_text
from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console
from zgrid.cli.store_access import own_address
from zgrid.identity import public_key_from_address

app = typer.Typer(
    help="Balances, transfers, the dev faucet and the staking discount.", no_args_is_help=True
)


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


def discount_document(view: dict[str, Any], token_price: int) -> dict[str, Any]:
    """The ledger's discount view of a twin, and the balance that reaches its next tier.

    That balance (token units, rounded up) covers the tier's months of the twin's spend at
    ``token_price``; none when there is no better tier or the twin spends nothing.
    """
    from zgrid.chain import HOURS_PER_MONTH  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    spend_tokens = Fraction(view["spend_usd_per_hour"]) * USD_UNITS / token_price
    tier = view["next_tier"]
    needed = None
    if tier is not None and spend_tokens:
        needed = ceil(Fraction(tier["months"]) * spend_tokens * HOURS_PER_MONTH)
    return {
        **view,
        "token_price": token_price,
        "spend_token_units_per_hour": int(spend_tokens),  # rounded down, as the ledger bills
        "next_tier_balance": needed,
    }


@app.command()
def discount(
    ctx: typer.Context,
    twin: Annotated[
        int | None,
        typer.Option("--twin", metavar="ID", min=1, help="This twin's; default: your own twin's."),
    ] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Show a twin's staking discount: balance, spend per hour, the months the balance
    covers, the percent off its bills now, and the balance that reaches the next tier."""
    from zgrid.cli.contract import own_twin_id  # noqa: PLC0415  # loaded on use, as the ledger's client

    with ledger_client(ctx, ledger, sign=False) as client:
        twin_id = own_twin_id(ctx, client) if twin is None else twin
        view = client.discount(twin_id)
        document = discount_document(view, int(client.economy()["token_price"]))
    if as_json:
        emit_json(document)
        return
    spend = (
        f"{usd_text(document['spend_usd_per_hour'])} USD/hour = "
        f"{tokens_text(document['spend_token_units_per_hour'])} tokens/hour"
    )
    months = document["months"]
    tier = document["next_tier"]
    if tier is None:
        next_tier = "none: this is the best tier"
    elif document["next_tier_balance"] is None:
        next_tier = f"{tier['percent']}% at {tier['months']} months of spending (it spends nothing)"
    else:
        next_tier = (
            f"{tier['percent']}% at {tier['months']} months of spending: a balance of "
            f"{tokens_text(document['next_tier_balance'])} tokens"
        )
    out_console.print(f"twin {document['twin_id']}")
    out_console.print(f"  balance:        {tokens_text(document['balance'])} tokens")
    out_console.print(f"  spend:          {spend}")
    out_console.print(f"  months covered: {'-' if months is None else months}")
    out_console.print(f"  discount:       {document['percent']}%")
    out_console.print(f"  next tier:      {next_tier}")
