"""`zgrid contract`: your contracts on the ledger, what they cost and the bills they paid.

Amounts are shown in tokens (7 decimals) and USD; ``--json`` gives the ledger's records
with exact integers: token units and units USD (10,000,000 of either to one).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from zgrid.cli.amounts import tokens_text, usd_text, utc_text
from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console, table_console
from zgrid.cli.store_access import own_address

if TYPE_CHECKING:
    from zgrid.chain import SyncChainClient

__all__ = ["app", "contract_document", "own_twin_id"]

app = typer.Typer(help="Your contracts: their state, price and bills.", no_args_is_help=True)

_PAGE = 500  # the most the ledger's API answers per page
_MAX_PAGES = 100  # so at most 50,000 contracts are listed

ContractId = Annotated[int, typer.Argument(help="Contract id.", min=1)]
TwinOption = Annotated[
    int | None,
    typer.Option("--twin", metavar="ID", min=1, help="This twin's; default: your own twin's."),
]


def own_twin_id(ctx: typer.Context, client: SyncChainClient) -> int:
    """The twin of the store's identity; NotFound (exit 1) saying how to make one."""
    from zgrid.chain import NotFound  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    address = own_address(ctx)
    twin = client.twin_of(address)
    if twin is None:
        raise NotFound(f"account {address} has no twin yet (create one with `zgrid twin create`)")
    return int(twin["id"])


def contract_document(contract: dict[str, Any], token_price: int) -> dict[str, Any]:
    """A contract as `zgrid contract show --json` gives it: its record's billing fields and
    its hourly price in units USD and in token units at ``token_price`` (rounded down, as
    the ledger bills)."""
    from zgrid.chain import tokens_for  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    hourly = int(contract["hourly"])
    return {
        "id": contract["id"],
        "type": contract["type"],
        "state": contract["state"],
        "deleted_reason": contract["deleted_reason"],
        "twin_id": contract["twin_id"],
        "node_id": contract["node_id"],
        "name": contract["name"],
        "public_ips": len(contract["public_ips"]),
        "hourly_usd_units": hourly,
        "hourly_token_units": tokens_for(Fraction(hourly), token_price),
        "token_price": token_price,
        "billed_until": contract["billed_until"],
        "next_bill": contract["next_bill"],
        "owed": contract["owed"],
        "grace_since": contract["grace_since"],
        "bills": contract["bills"],
    }


def _token_price(client: SyncChainClient) -> int:
    return int(client.economy()["token_price"])


def _where(document: dict[str, Any]) -> str:
    if document["type"] == "name":
        return f"name {document['name']}"
    return f"node {document['node_id']}"


def _state(document: dict[str, Any]) -> str:
    reason = document["deleted_reason"]
    return f"{document['state']} ({reason})" if reason else str(document["state"])


@app.command("ls")
def list_contracts(
    ctx: typer.Context,
    *,
    twin: TwinOption = None,
    state: Annotated[
        Literal["created", "grace_period", "deleted"] | None,
        typer.Option("--state", help="Only the contracts in this state."),
    ] = None,
    kind: Annotated[
        Literal["node", "name", "rent"] | None,
        typer.Option("--type", help="Only the contracts of this type."),
    ] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """List a twin's contracts: type, state, where, price per hour, bills and debt."""
    from zgrid.chain import LedgerUnavailable  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    with ledger_client(ctx, ledger, sign=False) as client:
        # A twin that is not there is NotFound, not a twin without contracts.
        twin_id = own_twin_id(ctx, client) if twin is None else int(client.twin(twin)["id"])
        price = _token_price(client)
        found: list[dict[str, Any]] = []
        for number in range(1, _MAX_PAGES + 1):
            answer = client.query(
                "contracts", twin_id=twin_id, state=state, type=kind, page=number, size=_PAGE
            )
            found.extend(answer["items"])
            if len(found) >= answer["total"] or not answer["items"]:
                break
        else:
            raise LedgerUnavailable(
                f"twin {twin_id} has more than {_PAGE * _MAX_PAGES} contracts; "
                "narrow the list with --state or --type"
            )
    documents = [contract_document(contract, price) for contract in found]
    if as_json:
        emit_json(documents)
        return
    if not documents:
        out_console.print(f"twin {twin_id} has no contracts{'' if state is None else ' ' + state}")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("contract", "type", "state", "where"):
        table.add_column(name, no_wrap=True)
    for name in ("USD/hour", "tokens/hour", "bills", "owed"):
        table.add_column(name, justify="right", no_wrap=True)
    for document in documents:
        table.add_row(
            str(document["id"]),
            document["type"],
            _state(document),
            _where(document),
            usd_text(document["hourly_usd_units"]),
            tokens_text(document["hourly_token_units"]),
            str(document["bills"]),
            tokens_text(document["owed"]),
        )
    table_console().print(table)
    out_console.print(f"{len(documents)} contract(s) of twin {twin_id}")


@app.command()
def show(
    ctx: typer.Context,
    contract_id: ContractId,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Show a contract's state, price per hour, billing times and debt."""
    with ledger_client(ctx, ledger, sign=False) as client:
        document = contract_document(client.contract(contract_id), _token_price(client))
    if as_json:
        emit_json(document)
        return
    rows = [
        ("state", _state(document)),
        ("type", document["type"]),
        ("where", _where(document)),
        ("twin", str(document["twin_id"])),
        ("public IPs", str(document["public_ips"])),
        (
            "price",
            f"{usd_text(document['hourly_usd_units'])} USD/hour = "
            f"{tokens_text(document['hourly_token_units'])} tokens/hour "
            f"(a token at {usd_text(document['token_price'])} USD)",
        ),
        ("billed until", utc_text(document["billed_until"])),
        ("next bill", utc_text(document["next_bill"]) if document["state"] != "deleted" else "-"),
        ("owed", f"{tokens_text(document['owed'])} tokens"),
        ("grace since", utc_text(document["grace_since"])),
        ("bills", str(document["bills"])),
    ]
    out_console.print(f"contract {document['id']}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        out_console.print(f"  {label + ':':<{width + 1}} {value}")


@app.command()
def bills(
    ctx: typer.Context,
    contract_id: ContractId,
    *,
    page: Annotated[int, typer.Option("--page", min=1, max=1_000_000, help="Page number.")] = 1,
    size: Annotated[int, typer.Option("--size", min=1, max=500, help="Bills per page.")] = 50,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """List a contract's bills, oldest first: period (UTC), price, discount, amount, where
    the amount went (burned, farmer, validators, foundation)."""
    with ledger_client(ctx, ledger, sign=False) as client:
        answer = client.bills(contract_id, page, size)
    if as_json:
        emit_json(answer)
        return
    items: list[dict[str, Any]] = answer["items"]
    if not items:
        total = answer["total"]
        out_console.print(
            f"contract {contract_id} has no bills yet"
            if not total
            else f"contract {contract_id} has {total} bill(s), none on page {page}"
        )
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("bill", justify="right", no_wrap=True)
    table.add_column("period (UTC)", no_wrap=True)
    for name in ("USD", "tokens", "discount", "amount"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for name in ("burned", "farmer", "validators", "foundation"):
        table.add_column(name, justify="right", no_wrap=True)
    for bill in items:
        split = bill["split"]
        table.add_row(
            str(bill["number"]),
            f"{utc_text(bill['period_start'])} - {utc_text(bill['period_end'])}",
            usd_text(bill["usd"]),
            tokens_text(bill["tokens"]),
            f"{bill['discount']}%",
            tokens_text(bill["amount"]),
            bill["status"],
            *(
                tokens_text(split[part])
                for part in ("burned", "farmer", "validators", "foundation")
            ),
        )
    table_console().print(table)
    first = (page - 1) * size + 1
    out_console.print(
        f"bills {first}-{first + len(items) - 1} of {answer['total']} of contract {contract_id}"
        " (amounts in tokens)"
    )
