"""`zgrid network`: the networks this machine deploys to (their ledger, hub and explorer).

Networks live in the store's clear part: none of these commands asks for a passphrase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from zgrid.cli.output import emit_json, out_console
from zgrid.cli.store_access import open_store

if TYPE_CHECKING:
    from zgrid.client import NetworkConfig

app = typer.Typer(
    help="The networks you deploy to: their ledger, hub and explorer.", no_args_is_help=True
)

Name = Annotated[str, typer.Argument(help="The network's name, e.g. devnet.", metavar="NAME")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _config(
    name: str, *, ledger: str, hub: str | None, explorer: str | None, identity: str
) -> NetworkConfig:
    from zgrid.client import NetworkConfig, StoreError  # noqa: PLC0415  # loaded by the commands using it

    try:
        return NetworkConfig(
            name=name, ledger=ledger, hub=hub, explorer=explorer, identity=identity
        )
    except StoreError as exc:  # a bad name or URL on the command line is wrong usage
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def add(
    ctx: typer.Context,
    name: Name,
    *,
    ledger: Annotated[
        str, typer.Option("--ledger", help="URL of the ledger's HTTP API.", metavar="URL")
    ],
    hub: Annotated[
        str | None, typer.Option("--hub", help="URL of the flist hub.", metavar="URL")
    ] = None,
    explorer: Annotated[
        str | None, typer.Option("--explorer", help="URL of the explorer.", metavar="URL")
    ] = None,
    identity: Annotated[
        str,
        typer.Option("--identity", help="The identity that signs on this network.", metavar="NAME"),
    ] = "default",
    use: Annotated[bool, typer.Option("--use", help="Make it the current network.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a network of that name.")] = False,
) -> None:
    """Add a network (the first one added becomes the current one)."""
    config = _config(name, ledger=ledger, hub=hub, explorer=explorer, identity=identity)
    store = open_store(ctx)
    store.add_network(config, overwrite=force)
    if use:
        store.use_network(name)
    current = " (current)" if store.current_network == name else ""
    out_console.print(f"added network {name}{current}: ledger {ledger}")


@app.command()
def use(ctx: typer.Context, name: Name) -> None:
    """Make a network the current one: deploys go there, signed by its identity."""
    store = open_store(ctx)
    store.use_network(name)
    out_console.print(f"using network {name}")


def _entry(network: NetworkConfig, current: str | None) -> dict[str, Any]:
    return {**network.to_json(), "current": network.name == current}


@app.command("ls")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the networks; the current one is marked with '*'."""
    store = open_store(ctx)
    current = store.current_network
    networks = store.networks()
    if as_json:
        emit_json(
            {"current": current, "networks": [_entry(network, current) for network in networks]}
        )
        return
    if not networks:
        out_console.print("no networks: add one with `zgrid network add NAME --ledger URL`")
        return
    for network in networks:
        mark = "*" if network.name == current else " "
        extra = "".join(
            f" {label} {value}"
            for label, value in (("hub", network.hub), ("explorer", network.explorer))
            if value is not None
        )
        out_console.print(
            f"{mark} {network.name}  ledger {network.ledger}{extra}  identity {network.identity}"
        )


@app.command("rm")
def remove(ctx: typer.Context, name: Name) -> None:
    """Forget a network. Its deployment records stay, found again if it is added back."""
    store = open_store(ctx)
    store.remove_network(name)
    kept = store.record_names(name)
    note = f" ({len(kept)} deployment record(s) kept)" if kept else ""
    out_console.print(f"removed network {name}{note}")


@app.command()
def access(
    ctx: typer.Context,
    deployment: Annotated[
        str,
        typer.Argument(
            help="A deployment whose spec has a private `network`.", metavar="DEPLOYMENT"
        ),
    ],
    network: Annotated[
        str | None,
        typer.Option(
            "--network", help="The network it runs on (default: the current one).", metavar="NAME"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make this machine a peer of a deployment's private network and print its wg-quick
    configuration (save it as FILE.conf, then `wg-quick up ./FILE.conf`). The first time,
    every node of the deployment is updated to take this machine as a peer; its key stays
    in your store."""
    from zgrid.cli.deploy import _grid, _run  # noqa: PLC0415  # loaded by this command only
    from zgrid.cli.output import err_console  # noqa: PLC0415

    async def work() -> str:
        async with _grid(ctx, network) as grid:
            return await grid.network_access(
                deployment, on_step=None if as_json else err_console.print
            )

    config = _run(work)
    if as_json:
        emit_json({"deployment": deployment, "wg_quick": config})
    else:
        out_console.print(config, end="", markup=False, highlight=False, soft_wrap=True)
