"""`zgrid node`: run a node daemon, show what it runs, print its account address."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from zgrid.cli.ledger_options import DEFAULT_LEDGER, hub_from_network, ledger_from_network
from zgrid.cli.output import emit_json, err_console, out_console

app = typer.Typer(
    help="Run a node: sell this machine's capacity to the grid.", no_args_is_help=True
)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data", help="The node's data directory (key, state, disks, images).", file_okay=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@app.command()
def run(
    *,
    farm: Annotated[int, typer.Option("--farm", min=1, help="The farm this node joins.")],
    ledger: Annotated[
        str,
        typer.Option(
            "--ledger",
            envvar="ZGRID_LEDGER",
            metavar="URL",
            help=(
                "The ledger to follow; default: $ZGRID_LEDGER, else the current network's "
                f"ledger (`zgrid network use`), else {DEFAULT_LEDGER}."
            ),
            show_default=False,
            callback=ledger_from_network,
        ),
    ] = DEFAULT_LEDGER,
    data: DataDir = Path("/var/lib/zgrid/node"),
    hub: Annotated[
        str | None,
        typer.Option(
            "--hub",
            envvar="ZGRID_HUB",
            metavar="URL",
            help=(
                "Flist hub for flists named `<twin>/<name>`; default: $ZGRID_HUB, else the "
                "current network's hub, else none."
            ),
            show_default=False,
            callback=hub_from_network,
        ),
    ] = None,
    capacity: Annotated[
        str | None,
        typer.Option(
            "--capacity",
            metavar="cru=N,mru=SIZE,sru=SIZE,hru=SIZE",
            help="Offer this instead of what is measured (several nodes on one machine).",
        ),
    ] = None,
    join_token: Annotated[
        str | None,
        typer.Option(
            "--join-token",
            envvar="ZGRID_JOIN_TOKEN",
            help="The farmer's permission to join (`zgrid farm join-token`); needed to register.",
        ),
    ] = None,
    zdb_port: Annotated[
        int, typer.Option("--zdb-port", min=1, max=65535, help="Port of the node's Zero-DB.")
    ] = 9900,
    yggdrasil_listen: Annotated[
        list[str] | None,
        typer.Option(
            "--yggdrasil-listen", metavar="URI", help="Accept yggdrasil peers here (tcp://…)."
        ),
    ] = None,
    yggdrasil_peer: Annotated[
        list[str] | None,
        typer.Option(
            "--yggdrasil-peer", metavar="URI", help="Peer with this yggdrasil node (repeat)."
        ),
    ] = None,
    reconcile_interval: Annotated[
        float,
        typer.Option("--reconcile-interval", min=0.5, help="Seconds between reconcile passes."),
    ] = 60.0,
    uptime_interval: Annotated[
        float,
        typer.Option(
            "--uptime-interval", min=1.0, help="Seconds of ledger time between uptime reports."
        ),
    ] = 2400.0,
    public_interface: Annotated[
        str,
        typer.Option(
            "--public-interface",
            metavar="NAME",
            help="The interface wired to the farm's public network: machines' public IPs go there.",
        ),
    ] = "",
    public_ip: Annotated[
        str,
        typer.Option(
            "--public-ip", metavar="CIDR", help="The node's own public IPv4 (a gateway node's)."
        ),
    ] = "",
    public_gateway: Annotated[
        str, typer.Option("--public-gateway", metavar="IP", help="The farm's IPv4 gateway.")
    ] = "",
    public_ip6: Annotated[
        str,
        typer.Option(
            "--public-ip6",
            metavar="CIDR",
            help="The node's own public IPv6; machines get theirs in its /64.",
        ),
    ] = "",
    public_gateway6: Annotated[
        str, typer.Option("--public-gateway6", metavar="IP", help="The farm's IPv6 gateway.")
    ] = "",
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            metavar="NAME",
            help="Serve web gateways under this domain (needs --public-ip).",
        ),
    ] = "",
    gateway_ca: Annotated[
        Path | None,
        typer.Option(
            "--gateway-ca",
            metavar="CERT",
            exists=True,
            dir_okay=False,
            help="Issue gateways' certificates from this CA (PEM; with --gateway-ca-key), "
            "instead of ACME.",
        ),
    ] = None,
    gateway_ca_key: Annotated[
        Path | None,
        typer.Option(
            "--gateway-ca-key",
            metavar="KEY",
            exists=True,
            dir_okay=False,
            help="The --gateway-ca's private key (PEM).",
        ),
    ] = None,
    acme_email: Annotated[
        str, typer.Option("--acme-email", metavar="EMAIL", help="Contact for ACME certificates.")
    ] = "",
) -> None:
    """Run the node daemon until interrupted: register, then run what the ledger says."""
    from zgrid.node import NodeConfig, NodeConfigError, public_settings, run_node  # noqa: PLC0415

    public = None
    if public_interface or public_ip or public_ip6 or domain:
        try:
            public = public_settings(
                public_interface,
                ip=public_ip,
                gateway=public_gateway,
                ip6=public_ip6,
                gateway6=public_gateway6,
                domain=domain,
            )
        except NodeConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
    if (gateway_ca is None) != (gateway_ca_key is None):
        raise typer.BadParameter("--gateway-ca and --gateway-ca-key go together")

    config = NodeConfig(
        farm_id=farm,
        ledger_url=ledger,
        data_dir=data,
        hub_url=hub,
        capacity=capacity,
        join_token=join_token,
        zdb_port=zdb_port,
        yggdrasil_listen=tuple(yggdrasil_listen or ()),
        yggdrasil_peers=tuple(yggdrasil_peer or ()),
        reconcile_interval=reconcile_interval,
        uptime_interval=uptime_interval,
        public=public,
        gateway_ca=(gateway_ca, gateway_ca_key) if gateway_ca and gateway_ca_key else None,
        acme_email=acme_email,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def ready(info: dict[str, Any]) -> None:
        err_console.print(
            f"node {info['node_id']} (twin {info['twin_id']}, farm {farm}) follows {ledger}; "
            f"planetary {info['yggdrasil']}"
        )

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(run_node(config, ready=ready))
    except KeyboardInterrupt:
        err_console.print("node stopped; its workloads keep running")


@app.command()
def address(data: DataDir = Path("/var/lib/zgrid/node"), as_json: JsonOption = False) -> None:
    """Print the node's account address (its key is made on first use); fund it for fees."""
    from zgrid.node import load_or_create_node_identity  # noqa: PLC0415

    identity = load_or_create_node_identity(data)
    if as_json:
        emit_json({"address": identity.address, "public_key": identity.public_key.hex()})
    else:
        out_console.print(identity.address)


@app.command()
def status(data: DataDir = Path("/var/lib/zgrid/node"), as_json: JsonOption = False) -> None:
    """What the node runs, per contract and workload, from its local state."""
    from zgrid.node import node_status  # noqa: PLC0415

    document = node_status(data)
    if as_json:
        emit_json(document)
        return
    contracts = document["contracts"]
    if not contracts:
        out_console.print(f"node at {data}: no contracts")
        return
    for contract in contracts:
        out_console.print(
            f"contract {contract['id']} (twin {contract['twin_id']}, version {contract['version']}): "
            f"{contract['state']}" + (f" — {contract['message']}" if contract["message"] else "")
        )
        for workload in contract["workloads"]:
            line = f"  {workload['name']:<20} {workload['type']:<10} {workload['state']}"
            if workload["message"]:
                line += f"  {workload['message']}"
            out_console.print(line)
