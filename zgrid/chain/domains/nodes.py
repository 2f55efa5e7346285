"""Nodes: registered by the node's own twin under a farm; capacity, location, uptime, power."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.errors import RejectCode
from zgrid.chain.records import Interface, Location, Node, PowerState, PublicConfig, Ref, Resources

__all__ = ["REGISTER", "REPORT_UPTIME", "SET_POWER", "UPDATE", "UPTIME_TOLERANCE", "signer_node"]

UPTIME_TOLERANCE = 60  # seconds an uptime report's timestamp may differ from block time


class NodeArgs(Args):
    farm_id: int = Field(ge=1)
    resources: Resources
    location: Location = Field(default_factory=Location)
    public_config: PublicConfig | None = None
    interfaces: list[Interface] = Field(default_factory=list, max_length=16)
    secure_boot: bool = False
    virtualized: bool = False
    serial: str = Field(default="", max_length=64)


def _check_farm(ctx: CallContext, farm_id: int) -> None:
    if ctx.state.farms.get(farm_id) is None:
        raise refuse(RejectCode.NOT_FOUND, f"no farm {farm_id}")


def register(ctx: CallContext, args: NodeArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    existing = ctx.state.node_by_twin.get(twin.id)
    if existing is not None:
        raise refuse(
            RejectCode.CONFLICT,
            f"twin {twin.id} already registered node {existing.id}; use nodes.update",
        )
    _check_farm(ctx, args.farm_id)
    node_id = ctx.state.next_id("node")
    node = Node(
        id=node_id, twin_id=twin.id, created=ctx.timestamp, updated=ctx.timestamp, **_fields(args)
    )
    ctx.state.nodes.put(node_id, node)
    ctx.state.node_by_twin.put(twin.id, Ref(id=node_id))
    ctx.emit(
        "NodeRegistered",
        node_id=node_id,
        farm_id=args.farm_id,
        twin_id=twin.id,
        resources=args.resources.model_dump(),
    )
    return {"node_id": node_id}


def _fields(args: NodeArgs) -> dict[str, Any]:
    return {
        "farm_id": args.farm_id,
        "resources": args.resources,
        "location": args.location,
        "public_config": args.public_config,
        "interfaces": args.interfaces,
        "secure_boot": args.secure_boot,
        "virtualized": args.virtualized,
        "serial": args.serial,
    }


def signer_node(ctx: CallContext) -> Node:
    """The node registered by the signer's twin, or a refusal saying the signer is no node."""
    twin = ctx.signer_twin()
    ref = ctx.state.node_by_twin.get(twin.id)
    node = None if ref is None else ctx.state.nodes.get(ref.id)
    if node is None:
        raise refuse(RejectCode.FORBIDDEN, f"twin {twin.id} is not a node")
    return node


def update(ctx: CallContext, args: NodeArgs) -> dict[str, Any]:
    node = signer_node(ctx)
    _check_farm(ctx, args.farm_id)
    if args.farm_id != node.farm_id:
        # Public IPs are reserved on the node's farm and released there on cancel.
        holding = [
            c.id
            for c in ctx.state.contracts.values()
            if c.node_id == node.id and c.public_ips and c.state != "deleted"
        ]
        if holding:
            raise refuse(
                RejectCode.CONFLICT,
                f"node {node.id} cannot leave farm {node.farm_id} while contracts "
                f"{', '.join(map(str, holding[:5]))} hold its public IPs",
            )
    ctx.state.nodes.put(
        node.id, node.model_copy(update={**_fields(args), "updated": ctx.timestamp})
    )
    ctx.emit(
        "NodeUpdated", node_id=node.id, farm_id=args.farm_id, resources=args.resources.model_dump()
    )
    return {"node_id": node.id}


class UptimeArgs(Args):
    uptime: int = Field(ge=0, description="seconds since the node booted")
    timestamp: int = Field(ge=0, description="the node's clock, unix seconds")


def report_uptime(ctx: CallContext, args: UptimeArgs) -> dict[str, Any]:
    node = signer_node(ctx)
    drift = args.timestamp - ctx.timestamp
    if abs(drift) > UPTIME_TOLERANCE:
        raise ctx.invalid(
            "timestamp",
            f"{args.timestamp} is {drift:+d} s from block time {ctx.timestamp} (at most ±{UPTIME_TOLERANCE} s)",
        )
    ctx.state.nodes.put(
        node.id,
        node.model_copy(update={"uptime": args.uptime, "last_uptime_report": ctx.timestamp}),
    )
    ctx.emit("NodeUptimeReported", node_id=node.id, uptime=args.uptime, timestamp=ctx.timestamp)
    return {"node_id": node.id}


class PowerArgs(Args):
    power: PowerState


def set_power(ctx: CallContext, args: PowerArgs) -> dict[str, Any]:
    node = signer_node(ctx)
    ctx.state.nodes.put(
        node.id, node.model_copy(update={"power": args.power, "updated": ctx.timestamp})
    )
    ctx.emit("NodePowerChanged", node_id=node.id, power=args.power)
    return {"node_id": node.id}


REGISTER = Call(NodeArgs, register)
UPDATE = Call(NodeArgs, update)
REPORT_UPTIME = Call(UptimeArgs, report_uptime)
SET_POWER = Call(PowerArgs, set_power)
