"""`zgrid farm`: create a farm, add its public IPs, look at it."""

from __future__ import annotations

from typing import Annotated

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console

app = typer.Typer(help="Farms: groups of nodes with their public IPs.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique farm name: 3-40 of A-Z a-z 0-9 _ -.")],
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Create a farm owned by your twin."""
    with ledger_client(ctx, ledger, sign=True) as client:
        farm_id = client.create_farm(name)
    if as_json:
        emit_json({"farm_id": farm_id, "name": name})
    else:
        out_console.print(f"created farm {farm_id} ({name})")


@app.command()
def show(
    ctx: typer.Context,
    farm_id: Annotated[int, typer.Argument(help="Farm id.")],
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Show a farm and its public IPs."""
    with ledger_client(ctx, ledger, sign=False) as client:
        farm = client.farm(farm_id)
    if as_json:
        emit_json(farm)
        return
    out_console.print(
        f"farm {farm['id']} {farm['name']!r}: twin {farm['twin_id']}, {farm['certification']}"
    )
    for ip in farm["public_ips"]:
        used = f"contract {ip['contract_id']}" if ip["contract_id"] else "free"
        out_console.print(f"  {ip['ip']} via {ip['gateway']}: {used}")


@app.command("add-ip")
def add_ip(
    ctx: typer.Context,
    farm_id: Annotated[int, typer.Argument(help="Farm id.")],
    ip: Annotated[str, typer.Argument(help="IPv4 with prefix, e.g. 185.69.166.7/24.")],
    gateway: Annotated[str, typer.Argument(help="Gateway of that network.")],
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Add a public IP the farm's nodes can hand to contracts."""
    with ledger_client(ctx, ledger, sign=True) as client:
        result = client.add_farm_ip(farm_id, ip, gateway)
    if as_json:
        emit_json({"farm_id": farm_id, "ip": ip, "height": result["height"]})
    else:
        out_console.print(f"farm {farm_id} now has {ip} (gateway {gateway})")
