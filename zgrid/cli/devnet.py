"""`zgrid devnet`: a whole grid on this machine (ledger, hub, explorer, nodes in their own
namespaces)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zgrid.cli.output import emit_json, err_console, out_console, table_console
from zgrid.cli.store_access import open_store

if TYPE_CHECKING:
    from zgrid.devnet import Devnet, DevnetStatus

app = typer.Typer(
    help="A whole grid on this machine: a dev ledger, an flist hub, an explorer and nodes "
    "(as root).",
    no_args_is_help=True,
)

NETWORK = "devnet"  # the name `up` gives the devnet in the client's networks

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar="ZGRID_DEVNET_DIR",
        help="Where the devnet keeps its data, keys, logs and pid files "
        "[default: /var/lib/zgrid/devnet].",
        metavar="DIR",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _devnet(directory: Path | None, progress: bool = False) -> Devnet:
    from zgrid.devnet import Devnet, default_dir  # noqa: PLC0415  # only these commands load it

    root = (directory or default_dir()).expanduser().absolute()
    return Devnet(root, progress=_show if progress else None)


_STARTED = time.monotonic()


def _show(message: str) -> None:
    err_console.print(f"  {time.monotonic() - _STARTED:5.1f}s  {message}")


@contextmanager
def _working(text: str) -> Iterator[None]:
    """A spinner while the slow parts run (the steps print above it); nothing when piped."""
    if err_console.is_terminal:
        with err_console.status(text, spinner="dots"):
            yield
    else:
        err_console.print(text)
        yield


@app.command()
def up(
    ctx: typer.Context,
    *,
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes", min=1, max=20, help="How many nodes [default: 2, or as many as it has]."
        ),
    ] = None,
    directory: DirOption = None,
    block_time: Annotated[
        float,
        typer.Option(
            "--block-time", min=0.1, max=10.0, help="Seconds between blocks (a new devnet's)."
        ),
    ] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Start the devnet, or finish starting it: every part that is missing is made, the
    rest is left running. Configures the network `devnet` for `zgrid deploy` (its ledger,
    hub and explorer: plans read the nodes from the explorer) and selects it."""
    devnet = _devnet(directory, progress=True)
    started = time.monotonic()
    with _working(f"devnet in {devnet.layout.root}"):
        status = asyncio.run(devnet.up(nodes=nodes, block_time=block_time))
    _configure_network(ctx, status)
    if as_json:
        emit_json(status.to_json())
        return
    _print_status(status)
    out_console.print(
        f"devnet up in {time.monotonic() - started:.0f} s; `zgrid` commands now use the "
        f"network {NETWORK!r} (try: zgrid nodes, zgrid deploy examples/hello-web.yaml)"
    )


def _configure_network(ctx: typer.Context, status: DevnetStatus) -> None:
    from zgrid.client import NetworkConfig  # noqa: PLC0415  # the client is heavy: load it on use

    store = open_store(ctx)
    identity = "default"
    if NETWORK in {network.name for network in store.networks()}:
        identity = store.network(NETWORK).identity
    config = NetworkConfig(
        name=NETWORK,
        ledger=status.ledger_url,
        hub=status.hub_url,
        explorer=status.explorer_url,
        identity=identity,
    )
    store.add_network(config, overwrite=True)
    store.use_network(NETWORK)


def _print_status(status: DevnetStatus) -> None:
    from rich.table import Table  # noqa: PLC0415  # tables only for people

    table = Table(title=f"devnet in {status.dir} ({status.subnet})", title_justify="left")
    for column in ("part", "where", "state", "pid", "log"):
        table.add_column(column)
    for component in status.components:
        table.add_row(
            component.name,
            component.url,
            "running" if component.running else "stopped",
            str(component.pid or "-"),
            component.log,
        )
    for node in status.nodes:
        label = node.name if node.node_id is None else f"{node.name} (node {node.node_id})"
        table.add_row(
            label,
            node.address,
            "running" if node.running else "stopped",
            str(node.pid or "-"),
            node.log,
        )
    table_console().print(table)
    if status.gateway_ip:
        out_console.print(
            f"gateways: *.{status.gateway_domain} on {status.gateway_ip} (node-1), certificates"
            f" from {status.ca}; public IPs in {status.public_subnet}, reached from this machine"
            f" or from `ip netns exec {status.internet_netns}`"
        )


@app.command()
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Each part of the devnet, where it answers and whether it runs (exit 1 if one is down)."""
    found = asyncio.run(_devnet(directory).status())
    if as_json:
        emit_json(found.to_json())
    else:
        _print_status(found)
    if not found.running:
        stopped = [c.name for c in found.components if not c.running]
        stopped += [n.name for n in found.nodes if not n.running]
        err_console.print(f"not running: {', '.join(stopped)} (`zgrid devnet up` starts them)")
        raise typer.Exit(1)


@app.command()
def logs(
    name: Annotated[
        str | None,
        typer.Argument(
            help="ledger, hub, explorer, yggdrasil or node-N [default: all of them].",
            metavar="PART",
        ),
    ] = None,
    directory: DirOption = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=1, max=100_000, help="How many last lines.")
    ] = 40,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (one part only).")
    ] = False,
) -> None:
    """Print the last lines of a part's log (or of every part's)."""
    paths = _devnet(directory).log_paths()
    if name is not None and name not in paths:
        raise typer.BadParameter(
            f"no part {name!r}; the parts are {', '.join(paths)}", param_hint="PART"
        )
    if follow and name is None:
        raise typer.BadParameter("--follow needs one PART", param_hint="--follow")
    chosen = {name: paths[name]} if name is not None else paths
    for part, path in chosen.items():
        if name is None:
            out_console.print(f"==> {part} ({path}) <==")
        for line in _tail(path, lines):
            out_console.print(line)
    if follow:
        assert name is not None
        _follow(paths[name])


def _tail(path: Path, count: int) -> list[str]:
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - 256 * count))
            text = log.read().decode(errors="replace")
    except OSError:
        return ["(no log yet)"]
    return text.splitlines()[-count:]


def _follow(path: Path) -> None:
    with path.open("rb") as log:
        log.seek(0, 2)
        while True:
            chunk = log.readline()
            if chunk:
                out_console.print(chunk.decode(errors="replace").rstrip("\n"))
            else:
                time.sleep(0.2)


@app.command()
def down(
    directory: DirOption = None,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Also delete the devnet's directory (its chain, keys, logs)."),
    ] = False,
) -> None:
    """Stop the devnet and remove everything it made on the machine: processes, network
    namespaces, links, mounts and loop devices. Its directory stays unless --purge."""
    devnet = _devnet(directory, progress=True)
    with _working(f"stopping the devnet in {devnet.layout.root}"):
        found = asyncio.run(devnet.down(purge=purge))
    if not found:
        out_console.print(f"no devnet in {devnet.layout.root}: nothing to stop")
        return
    kept = "" if purge else f"; its data stays in {devnet.layout.root} (`up` starts it again)"
    out_console.print(f"devnet stopped, nothing of it left running{kept}")
