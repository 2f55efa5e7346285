"""Farms: a farmer's group of nodes, with a unique name, public IPs and a certification.

Nodes join a farm with a join token its farmer signed (``nodes.register``); the farmer
removes one with ``farms.remove_node``, which ends the node's contracts (their public
IPs go back to the farm) so a node that should not be there cannot keep the farm's IPs.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, field_validator

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.domains.contracts import end_contract, live_contracts_on_node
from zgrid.chain.errors import RejectCode
from zgrid.chain.records import Farm, FarmIP, Ref
from zgrid.chain.units import Id

__all__ = ["ADD_IP", "CREATE", "REMOVE_IP", "REMOVE_NODE", "SET_CERTIFICATION", "owned_farm"]


class CreateArgs(Args):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{3,40}$")
    pricing_policy_id: Id = 1


def create(ctx: CallContext, args: CreateArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    key = args.name.lower()
    taken = ctx.state.farm_by_name.get(key)
    if taken is not None:
        raise refuse(RejectCode.CONFLICT, f"farm name {args.name!r} is taken by farm {taken.id}")
    if ctx.genesis.price_policy(args.pricing_policy_id) is None:
        raise refuse(RejectCode.NOT_FOUND, f"no pricing policy {args.pricing_policy_id}")
    farm_id = ctx.state.next_id("farm")
    farm = Farm(
        id=farm_id,
        name=args.name,
        twin_id=twin.id,
        pricing_policy_id=args.pricing_policy_id,
        created=ctx.timestamp,
    )
    ctx.state.farms.put(farm_id, farm)
    ctx.state.farm_by_name.put(key, Ref(id=farm_id))
    ctx.emit(
        "FarmCreated",
        farm_id=farm_id,
        name=args.name,
        twin_id=twin.id,
        pricing_policy_id=args.pricing_policy_id,
    )
    return {"farm_id": farm_id}


def owned_farm(ctx: CallContext, farm_id: int) -> Farm:
    farm = ctx.state.farms.get(farm_id)
    if farm is None:
        raise refuse(RejectCode.NOT_FOUND, f"no farm {farm_id}")
    if farm.twin_id != ctx.signer_twin().id:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"only the owner of farm {farm_id} (twin {farm.twin_id}) may change it",
        )
    return farm


class AddIPArgs(Args):
    farm_id: Id
    ip: str
    gateway: str

    @field_validator("ip")
    @classmethod
    def _interface(cls, value: str) -> str:
        try:
            interface = ipaddress.IPv4Interface(value)
        except ValueError as exc:
            raise ValueError(
                f"must be an IPv4 address with its prefix, like 203.0.113.7/24: {exc}"
            ) from exc
        if "/" not in value or interface.network.prefixlen >= 31:
            raise ValueError("must carry a prefix of /30 or wider, like 203.0.113.7/24")
        return str(interface)

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError as exc:
            raise ValueError(f"must be an IPv4 address: {exc}") from exc


def add_ip(ctx: CallContext, args: AddIPArgs) -> dict[str, Any]:
    farm = owned_farm(ctx, args.farm_id)
    interface = ipaddress.IPv4Interface(args.ip)
    gateway = ipaddress.IPv4Address(args.gateway)
    if gateway not in interface.network or gateway == interface.ip:
        raise ctx.invalid("gateway", f"{gateway} is not another address in {interface.network}")
    if any(ipaddress.IPv4Interface(existing.ip).ip == interface.ip for existing in farm.public_ips):
        raise refuse(RejectCode.CONFLICT, f"farm {farm.id} already has {interface.ip}")
    ips = [*farm.public_ips, FarmIP(ip=args.ip, gateway=args.gateway)]
    ctx.state.farms.put(farm.id, farm.model_copy(update={"public_ips": ips}))
    ctx.emit("FarmIPAdded", farm_id=farm.id, ip=args.ip, gateway=args.gateway)
    return {"farm_id": farm.id, "ip": args.ip}


class RemoveIPArgs(Args):
    farm_id: Id
    ip: str


def remove_ip(ctx: CallContext, args: RemoveIPArgs) -> dict[str, Any]:
    farm = owned_farm(ctx, args.farm_id)
    wanted = args.ip.split("/")[0]
    match = next((ip for ip in farm.public_ips if ip.ip.split("/")[0] == wanted), None)
    if match is None:
        raise refuse(RejectCode.NOT_FOUND, f"farm {farm.id} has no public IP {wanted}")
    if match.contract_id:
        raise refuse(RejectCode.CONFLICT, f"{wanted} is in use by contract {match.contract_id}")
    ips = [ip for ip in farm.public_ips if ip is not match]
    ctx.state.farms.put(farm.id, farm.model_copy(update={"public_ips": ips}))
    ctx.emit("FarmIPRemoved", farm_id=farm.id, ip=match.ip)
    return {"farm_id": farm.id, "ip": match.ip}


class CertificationArgs(Args):
    farm_id: Id
    certification: Literal["not_certified", "gold"]


def set_certification(ctx: CallContext, args: CertificationArgs) -> dict[str, Any]:
    if ctx.signer != ctx.genesis.validator:
        raise refuse(RejectCode.FORBIDDEN, "only the validator may certify farms")
    farm = ctx.state.farms.get(args.farm_id)
    if farm is None:
        raise refuse(RejectCode.NOT_FOUND, f"no farm {args.farm_id}")
    ctx.state.farms.put(farm.id, farm.model_copy(update={"certification": args.certification}))
    ctx.emit("FarmCertificationChanged", farm_id=farm.id, certification=args.certification)
    return {"farm_id": farm.id}


class RemoveNodeArgs(Args):
    farm_id: Id
    node_id: Id


def remove_node(ctx: CallContext, args: RemoveNodeArgs) -> dict[str, Any]:
    farm = owned_farm(ctx, args.farm_id)
    node = ctx.state.nodes.get(args.node_id)
    if node is None or node.farm_id != farm.id:
        raise refuse(RejectCode.NOT_FOUND, f"farm {farm.id} has no node {args.node_id}")
    # Node contracts before the rent contract that may hold them.
    ending = sorted(live_contracts_on_node(ctx, node.id), key=lambda c: c.type == "rent")
    for contract in ending:
        end_contract(ctx, contract, "node_removed_from_farm")
    ctx.state.nodes.delete(node.id)
    ctx.state.node_by_twin.delete(node.twin_id)
    ended = [contract.id for contract in ending]
    ctx.emit("NodeRemoved", node_id=node.id, farm_id=farm.id, twin_id=node.twin_id, contracts=ended)
    return {"node_id": node.id, "farm_id": farm.id, "ended_contracts": ended}


CREATE = Call(CreateArgs, create)
ADD_IP = Call(AddIPArgs, add_ip)
REMOVE_IP = Call(RemoveIPArgs, remove_ip)
SET_CERTIFICATION = Call(CertificationArgs, set_certification)
REMOVE_NODE = Call(RemoveNodeArgs, remove_node)
