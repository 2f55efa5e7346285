"""`zgrid plan|deploy|apply|ls|show|logs|destroy`: deployments from spec files, on a network.

Exit codes: 0 done, 1 failed (and rolled back: nothing this run made is left), 2 wrong
usage, 3 failed and not all of it could be undone (the message says what is left;
`zgrid destroy NAME` cleans up), 130 interrupted (what the run made so far is rolled back
first).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from zgrid.cli.output import emit_json, err_console, out_console
from zgrid.cli.progress import ProgressView
from zgrid.cli.store_access import open_store

if TYPE_CHECKING:
    from zgrid.client import Grid, Plan

__all__ = ["register"]

T = TypeVar("T")

SpecFile = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", dir_okay=False, metavar="SPEC")
]
NetworkOption = Annotated[
    str | None,
    typer.Option(
        "--network",
        envvar="ZGRID_NETWORK",
        help="The network to use (`zgrid network ls`).",
        show_default="the current one",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        max=86400,
        help="Seconds the nodes get to report before the deploy is rolled back.",
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


def register(app: typer.Typer) -> None:
    for command in (plan, deploy, apply, ls, show, logs, destroy):
        app.command(command.__name__)(command)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` on an event loop; SIGTERM interrupts it like Ctrl-C (so it rolls back)."""

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await work()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


def _grid(ctx: typer.Context, network: str | None, timeout: float | None = None) -> Grid:
    from zgrid.client import DEFAULT_TIMEOUT, Grid  # noqa: PLC0415  # heavy: load on use

    return Grid.from_store(open_store(ctx), network=network, timeout=timeout or DEFAULT_TIMEOUT)


def _print_plan(plan: Plan, *, console: Console = out_console) -> None:
    from zgrid.client import decimal_text  # noqa: PLC0415

    console.print(f"plan for {plan.name} on network {plan.network} ({plan.nodes_text}):")
    marks = {"create": "+", "update": "~", "replace": "±", "remove": "-", "keep": "="}
    for change in plan.changes:
        price = f"{decimal_text(change.price / 10_000_000)} USD/h" if change.price else ""
        if change.action == "create":
            head = f"+ new contract on node {change.node_id}"
        elif change.action == "update":
            assert change.previous is not None and change.deployment is not None
            head = (
                f"~ contract {change.contract_id} on node {change.node_id} "
                f"(version {change.previous.version} -> {change.deployment.version})"
            )
        elif change.action == "cancel":
            head = f"- contract {change.contract_id} on node {change.node_id} (cancelled)"
        else:
            head = f"= contract {change.contract_id} on node {change.node_id} (unchanged)"
        console.print(f"  {head}  {price}".rstrip())
        for workload in change.workloads:
            reason = f" ({workload.reason})" if workload.reason else ""
            was = f" replacing {workload.old_name}" if workload.old_name else ""
            console.print(
                f"      {marks[workload.action]} {workload.name} {workload.type} "
                f"{workload.action}{was}{reason}"
            )
    counts = plan.counts()
    summary = ", ".join(
        f"{counts[action]} to {action}"
        for action in ("create", "update", "replace", "remove")
        if counts.get(action)
    )
    console.print(f"workloads: {summary or 'nothing changes'}")
    console.print(
        f"price: {decimal_text(plan.price_usd / 10_000_000)} USD per hour = "
        f"{decimal_text(plan.price_tokens / 10_000_000)} tokens per hour "
        f"(a token at {decimal_text(Fraction(plan.token_price, 10_000_000))} USD)"
    )


def plan(
    ctx: typer.Context, spec: SpecFile, network: NetworkOption = None, as_json: JsonOption = False
) -> None:
    """Show what deploying or applying SPEC would create, change and remove, and its price
    per hour. Nothing is signed or sent."""

    async def work() -> Plan:
        async with _grid(ctx, network) as grid:
            return await grid.plan(spec)

    result = _run(work)
    if as_json:
        emit_json(result.to_json_dict())
    else:
        _print_plan(result)


def deploy(
    ctx: typer.Context,
    spec: SpecFile,
    *,
    network: NetworkOption = None,
    timeout: TimeoutOption = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Deploy SPEC: create its contracts, follow the nodes until every workload runs.

    Any failure cancels every contract this deploy made and prints the node's own error.
    """

    async def work() -> Any:
        async with _grid(ctx, network, timeout) as grid:
            with ProgressView(quiet=as_json) as view:
                return await grid.deploy(spec, on_progress=view.workloads, on_step=view.step)

    _show_view(_run(work), as_json=as_json, done="deployed")


def apply(
    ctx: typer.Context,
    spec: SpecFile,
    *,
    network: NetworkOption = None,
    yes: YesOption = False,
    timeout: TimeoutOption = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Make what runs match SPEC, changing only what changed (through contract updates).

    Shows the plan and asks before anything is signed, unless --yes.
    """
    if not yes and not sys.stdin.isatty():
        raise typer.BadParameter(
            "not a terminal to confirm on: add --yes to apply without asking", param_hint="--yes"
        )

    async def work() -> Any:
        async with _grid(ctx, network, timeout) as grid:
            planned = await grid.plan(spec)
            if planned.empty:
                return None
            if not yes:
                _print_plan(planned, console=err_console if as_json else out_console)
                if not typer.confirm("apply this plan?", default=False, err=True):
                    raise typer.Exit(1)
            with ProgressView(quiet=as_json) as view:
                return await grid.apply(
                    spec, plan=planned, on_progress=view.workloads, on_step=view.step
                )

    result = _run(work)
    if result is None:
        if as_json:
            emit_json({"changed": False})
        else:
            out_console.print("nothing to change: what runs matches the spec")
        return
    _show_view(result, as_json=as_json, done="applied")


def ls(ctx: typer.Context, network: NetworkOption = None, as_json: JsonOption = False) -> None:
    """List the deployments made from this machine on the network."""

    async def work() -> Any:
        async with _grid(ctx, network) as grid:
            return await grid.deployments()

    found = _run(work)
    if as_json:
        emit_json([summary.to_json_dict() for summary in found])
        return
    if not found:
        out_console.print("no deployments")
        return
    for summary in found:
        contracts = ", ".join(map(str, summary.contracts)) or "none"
        out_console.print(
            f"{summary.name}  {summary.status}  {summary.workloads} workload(s)  "
            f"contracts {contracts}  nodes {', '.join(map(str, summary.nodes)) or '-'}"
        )


def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    network: NetworkOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per workload of a deployment: its state, node, addresses and error."""

    async def work() -> Any:
        async with _grid(ctx, network) as grid:
            return await grid.show(name)

    _show_view(_run(work), as_json=as_json, done="")


def _show_view(view: Any, *, as_json: bool, done: str) -> None:
    if as_json:
        emit_json(view.to_json_dict())
        return
    if done:
        out_console.print(f"{view.name} {done} on network {view.network}")
    else:
        out_console.print(f"{view.name} on network {view.network}: {view.status}")
    for workload in view.workloads:
        where = f"node {workload.node_id}, contract {workload.contract_id}"
        out_console.print(f"  {workload.name} ({workload.type}) {workload.state} on {where}")
        if workload.planetary_ip:
            out_console.print(f"      planetary: {workload.planetary_ip}")
        if workload.type.startswith("gateway") and workload.data.get("fqdn"):
            out_console.print(f"      https://{workload.data['fqdn']}/")
        for field in ("public_ip", "public_ip6"):
            if workload.type == "zmachine" and workload.data.get(field):
                out_console.print(f"      public: {workload.data[field]}")
        for private in workload.data.get("private") or []:
            if isinstance(private, dict):
                out_console.print(f"      private: {private.get('ip')} ({private.get('network')})")
        accelerator = workload.data.get("accelerator") if workload.type == "zmachine" else None
        if accelerator:
            note = workload.data.get("accelerator_note")
            why = f" ({note})" if note else ""
            out_console.print(f"      virtual machine under qemu, {str(accelerator).upper()}{why}")
        if workload.type == "zdb" and workload.data.get("namespace"):
            found = workload.data.get("ips")
            ips = ", ".join(map(str, found[:8])) if isinstance(found, list) else "?"
            out_console.print(
                f"      namespace {workload.data['namespace']} on port "
                f"{workload.data.get('port')} of {ips}"
            )
        if workload.message:
            out_console.print(f"      {workload.message}")


def logs(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(metavar="NAME/MACHINE", help="A deployment and one of its machines.")
    ],
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new output until Ctrl-C.")
    ] = False,
    network: NetworkOption = None,
) -> None:
    """Print a machine's output, read through its node's log channel."""
    name, sep, machine = target.partition("/")
    if not sep or not name or not machine:
        raise typer.BadParameter(
            f"expected NAME/MACHINE, got {target!r}", param_hint="NAME/MACHINE"
        )

    async def work() -> None:
        async with _grid(ctx, network) as grid:
            async for chunk in grid.logs(name, machine, follow=follow):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()

    _run(work)


def destroy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    network: NetworkOption = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Cancel every contract of a deployment, also those an interrupted deploy left."""
    if not yes:
        if not sys.stdin.isatty():
            raise typer.BadParameter(
                "not a terminal to confirm on: add --yes to destroy without asking",
                param_hint="--yes",
            )
        if not typer.confirm(f"destroy {name}?", default=False, err=True):
            raise typer.Exit(1)

    async def work() -> list[int]:
        async with _grid(ctx, network) as grid:
            return await grid.destroy(name, on_step=None if as_json else err_console.print)

    cancelled = _run(work)
    if as_json:
        emit_json({"name": name, "cancelled": cancelled})
    else:
        out_console.print(
            f"destroyed {name}: cancelled contract(s) {', '.join(map(str, cancelled)) or 'none'}"
        )
