"""Nodes: registered by the node's own twin into a farm, with the farmer's join token.

A node's record holds its capacity, location, uptime and power state. It joins a farm
only with a join token the farm's twin signed (:mod:`zgrid.chain.domains.join_tokens`),
to register and to move to another farm alike; the farmer can remove it again
(``farms.remove_node``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.domains.farming import credit_uptime, start_farming
from zgrid.chain.domains.join_tokens import JoinToken, parse_join_token
from zgrid.chain.errors import RejectCode
from zgrid.chain.records import (
    Farm,
    Interface,
    Location,
    Node,
    PowerState,
    PublicConfig,
    Ref,
    Resources,
    UsedJoinToken,
)
from zgrid.chain.units import U64, Id

__all__ = ["REGISTER", "REPORT_UPTIME", "SET_POWER", "UPDATE", "UPTIME_TOLERANCE", "signer_node"]

UPTIME_TOLERANCE = 60  # seconds an uptime report's timestamp may differ from block time

# A node passes the token as the farmer handed it (one line of text) or as its fields.
JoinTokenArg = Annotated[JoinToken, BeforeValidator(parse_join_token)]


class NodeArgs(Args):
    farm_id: Id
    resources: Resources
    location: Location = Field(default_factory=Location)
    public_config: PublicConfig | None = None
    interfaces: list[Interface] = Field(default_factory=list, max_length=16)
    secure_boot: bool = False
    virtualized: bool = False
    serial: str = Field(default="", max_length=64)


class RegisterArgs(NodeArgs):
    join_token: JoinTokenArg


class UpdateArgs(NodeArgs):
    join_token: JoinTokenArg | None = Field(
        default=None, description="needed only to move the node to another farm"
    )


def _farm(ctx: CallContext, farm_id: int) -> Farm:
    farm = ctx.state.farms.get(farm_id)
    if farm is None:
        raise refuse(RejectCode.NOT_FOUND, f"no farm {farm_id}")
    return farm


def _join_token_key(farm_id: int, token_id: str) -> str:
    return f"{farm_id}-{token_id}"


def _admit(ctx: CallContext, farm: Farm, token: JoinToken | None, node_id: int) -> None:
    """Check the farmer's permission for the signer's node to join ``farm``, and use it up."""
    how = f"ask the farmer for one made with `zgrid farm join-token {farm.id}`"
    if token is None:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"joining farm {farm.id} needs a join token from its farmer; {how}",
        )
    if token.farm_id != farm.id:
        raise ctx.invalid("join_token", f"is for farm {token.farm_id}, not farm {farm.id}")
    if token.chain_id != ctx.genesis.chain_id:
        raise ctx.invalid(
            "join_token", f"is for chain {token.chain_id!r}, this is {ctx.genesis.chain_id!r}"
        )
    farmer = ctx.state.twins.get(farm.twin_id)
    if farmer is None or not token.signed_by(farmer.account):
        raise refuse(
            RejectCode.FORBIDDEN,
            f"the join token is not signed by the farmer of farm {farm.id} (twin {farm.twin_id}); {how}",
        )
    if token.node and token.node != ctx.signer:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"the join token is for the node with account {token.node[:16]}…, "
            f"not {ctx.signer[:16]}…; {how}",
        )
    if token.expires < ctx.timestamp:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"the join token expired {ctx.timestamp - token.expires} s ago (ledger time); {how}",
        )
    key = _join_token_key(farm.id, token.id)
    used = ctx.state.join_tokens.get(key)
    if used is not None:
        raise refuse(
            RejectCode.CONFLICT,
            f"the join token was already used (by node {used.node_id}); each token registers one node; {how}",
        )
    ctx.state.join_tokens.put(
        key, UsedJoinToken(farm_id=farm.id, token_id=token.id, node_id=node_id, used=ctx.timestamp)
    )


def register(ctx: CallContext, args: RegisterArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    existing = ctx.state.node_by_twin.get(twin.id)
    if existing is not None:
        raise refuse(
            RejectCode.CONFLICT,
            f"twin {twin.id} already registered node {existing.id}; a node registers once, "
            "then updates its record",
        )
    farm = _farm(ctx, args.farm_id)
    node_id = ctx.state.next_id("node")
    _admit(ctx, farm, args.join_token, node_id)
    node = Node(
        id=node_id, twin_id=twin.id, created=ctx.timestamp, updated=ctx.timestamp, **_fields(args)
    )
    node = start_farming(ctx, node)
    ctx.state.nodes.put(node_id, node)
    ctx.state.node_by_twin.put(twin.id, Ref(id=node_id))
    ctx.emit("NodeRegistered", node_id=node_id, twin_id=twin.id, **_described(args))
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


def _described(args: NodeArgs) -> dict[str, Any]:
    """What a node says of itself, as its registration and update events carry it: all an
    explorer needs to show the node without reading the ledger's state."""
    return {
        "farm_id": args.farm_id,
        "resources": args.resources.model_dump(),
        "location": args.location.model_dump(),
        "public_config": None if args.public_config is None else args.public_config.model_dump(),
        "interfaces": [interface.model_dump() for interface in args.interfaces],
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


def update(ctx: CallContext, args: UpdateArgs) -> dict[str, Any]:
    node = signer_node(ctx)
    farm = _farm(ctx, args.farm_id)
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
        _admit(ctx, farm, args.join_token, node.id)
    ctx.state.nodes.put(
        node.id, node.model_copy(update={**_fields(args), "updated": ctx.timestamp})
    )
    ctx.emit("NodeUpdated", node_id=node.id, twin_id=node.twin_id, **_described(args))
    return {"node_id": node.id}


class UptimeArgs(Args):
    uptime: U64 = Field(description="seconds since the node booted")
    timestamp: U64 = Field(description="the node's clock, unix seconds")
    node_id: Id | None = Field(
        default=None, description="the reporting node; refused unless it is the signer's"
    )


def report_uptime(ctx: CallContext, args: UptimeArgs) -> dict[str, Any]:
    node = signer_node(ctx)
    if args.node_id is not None and args.node_id != node.id:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"the signer is node {node.id}'s twin; it cannot report for node {args.node_id}",
        )
    drift = args.timestamp - ctx.timestamp
    if abs(drift) > UPTIME_TOLERANCE:
        raise ctx.invalid(
            "timestamp",
            f"{args.timestamp} is {drift:+d} s from block time {ctx.timestamp} (at most ±{UPTIME_TOLERANCE} s)",
        )
    ctx.state.nodes.put(node.id, credit_uptime(ctx, node, args.uptime))
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


REGISTER = Call(RegisterArgs, register)
UPDATE = Call(UpdateArgs, update)
REPORT_UPTIME = Call(UptimeArgs, report_uptime)
SET_POWER = Call(PowerArgs, set_power)
