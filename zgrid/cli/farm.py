"""`zgrid farm`: create a farm, add its public IPs, let nodes join it or remove them, look at it
and at the farming rewards its nodes earned."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from zgrid.cli.amounts import percent_text, tokens_text, utc_text
from zgrid.cli.durations import parse_duration
from zgrid.cli.ledger_options import DEFAULT_LEDGER, JsonOption, LedgerOption, ledger_client
from zgrid.cli.output import emit_json, out_console, table_console
from zgrid.cli.store_access import signing_identity
from zgrid.identity import public_key_from_address

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
    ip: Annotated[str, typer.Argument(help="IPv4 with prefix, e.g. 203.0.113.7/24.")],
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


MAX_VALIDITY = 3650 * 86400  # ten years: a token is a standing permission, not a forever one


@app.command("join-token")
def join_token(
    ctx: typer.Context,
    farm_id: Annotated[int, typer.Argument(help="Your farm's id.", min=1)],
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            metavar="ADDRESS",
            help="Only the node with this account address may use it; default: any node.",
        ),
    ] = None,
    valid_for: Annotated[
        str,
        typer.Option(
            "--valid-for",
            metavar="DURATION",
            help="How long it can be used, in ledger time: 90s, 30m, 1h, 7d.",
        ),
    ] = "1h",
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Print a join token that lets one node register into your farm.

    Signed with your twin's key; the ledger sees it only when a node registers with it.
    """
    from zgrid.chain import ChainError, issue_join_token  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    seconds = parse_duration(valid_for, most=MAX_VALIDITY, param_hint="--valid-for")
    node_address = "" if node is None else public_key_from_address(node).hex()
    identity = signing_identity(ctx)
    with ledger_client(ctx, ledger, sign=False) as client:
        head = client.head()
        farm = client.farm(farm_id)
        twin = client.twin_of(identity.address)
    if twin is None or twin["id"] != farm["twin_id"]:
        yours = "you have no twin" if twin is None else f"yours is twin {twin['id']}"
        raise ChainError(
            f"farm {farm_id} belongs to twin {farm['twin_id']} and {yours}; "
            "only a farm's farmer can let nodes join it"
        )
    token = issue_join_token(
        identity,
        chain_id=head["chain_id"],
        farm_id=farm_id,
        expires=head["timestamp"] + seconds,
        node=node_address,
    )
    if as_json:
        emit_json(
            {
                "token": token.encode(),
                "farm_id": farm_id,
                "node": token.node,
                "expires": token.expires,
                "id": token.id,
            }
        )
    else:
        out_console.print(token.encode())


@app.command("remove-node")
def remove_node(
    ctx: typer.Context,
    farm_id: Annotated[int, typer.Argument(help="Your farm's id.", min=1)],
    node_id: Annotated[int, typer.Argument(help="The node to remove from it.", min=1)],
    *,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """Remove a node from your farm; its contracts end and their public IPs return to the farm."""
    with ledger_client(ctx, ledger, sign=True) as client:
        result = client.submit("farms.remove_node", {"farm_id": farm_id, "node_id": node_id})
    ended: list[int] = result["result"]["ended_contracts"]
    if as_json:
        emit_json(
            {
                "farm_id": farm_id,
                "node_id": node_id,
                "ended_contracts": ended,
                "height": result["height"],
            }
        )
    else:
        contracts = f", ended contracts {', '.join(map(str, ended))}" if ended else ""
        out_console.print(f"removed node {node_id} from farm {farm_id}{contracts}")


_REWARD_PAGE = 500  # the most the ledger's API answers per page
_MAX_REWARD_PAGES = 100


@app.command()
def rewards(
    ctx: typer.Context,
    farm_id: Annotated[int, typer.Argument(help="Farm id.", min=1)],
    *,
    node: Annotated[
        int | None, typer.Option("--node", metavar="ID", min=1, help="Only this node's.")
    ] = None,
    ledger: LedgerOption = DEFAULT_LEDGER,
    as_json: JsonOption = False,
) -> None:
    """List the farming rewards of a farm's nodes, per node and farming period: uptime, the
    units it farmed, traffic, and the tokens minted to the farmer (or why none were)."""
    from zgrid.chain import LedgerUnavailable  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    found: list[dict[str, Any]] = []
    with ledger_client(ctx, ledger, sign=False) as client:
        for number in range(1, _MAX_REWARD_PAGES + 1):
            answer = client.farm_rewards(farm_id, node, number, _REWARD_PAGE)
            found.extend(answer["items"])
            if len(found) >= answer["total"] or not answer["items"]:
                break
        else:
            raise LedgerUnavailable(
                f"farm {farm_id} has more than {_REWARD_PAGE * _MAX_REWARD_PAGES} rewards; "
                "narrow the list with --node"
            )
    if as_json:
        emit_json(found)
        return
    which = f"node {node} of farm {farm_id}" if node is not None else f"farm {farm_id}"
    if not found:
        out_console.print(f"no farming period of {which} has ended yet")
        return
    from zgrid.cli.nodes import size_text  # noqa: PLC0415  # the sizes as `zgrid nodes` shows them

    table = Table(box=None, pad_edge=False)
    table.add_column("node", justify="right", no_wrap=True)
    table.add_column("period", justify="right", no_wrap=True)
    table.add_column("from - to (UTC)", no_wrap=True)
    for name in ("uptime", "CU", "SU", "traffic", "tokens"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("withheld because", no_wrap=False)
    for reward in found:
        table.add_row(
            str(reward["node_id"]),
            str(reward["period"]),
            f"{utc_text(reward['period_start'])} - {utc_text(reward['period_end'])}",
            percent_text(reward["uptime_permille"]),
            reward["cu"],
            reward["su"],
            size_text(reward["traffic"]),
            tokens_text(reward["tokens"]),
            reward["reason"] or "-",
        )
    table_console().print(table)
    minted = sum(int(reward["tokens"]) for reward in found)
    out_console.print(
        f"{len(found)} farming period(s) of {which}: {tokens_text(minted)} tokens minted"
    )
