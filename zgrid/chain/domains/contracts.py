"""Contracts: node contracts (a sealed deployment on one node), name contracts, rent contracts.

The ledger never reads a deployment: it keeps the hash the deployer signed and the
sealed body only the node can open, reserves the farm's public IPs the contract
asks for, and records what the node reports back. Since it cannot read the
deployment's signature requirement either, the contract names the twins of that
requirement (``approvers``); only they may add approvals, and the node checks the list
against the deployment it unseals.

A node contract declares the capacity it reserves (``capacity``: cores, and bytes of
memory, SSD and HDD). The node's record keeps the sum of what its live node contracts
declared (``reserved``), changed by each create, update and end, never recounted; a
contract that does not fit the node's ``resources − reserved`` is refused, and the
node refuses a deployment asking for more than its contract declared.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import Field, field_validator

from zgrid.chain.domains import money
from zgrid.chain.domains.base import Args, Call, CallContext, LedgerContext, refuse
from zgrid.chain.domains.billing import (
    MAX_TRAFFIC_REPORT,
    bill_contract,
    forgive,
    grace_expired,
    reprice,
    start_billing,
    stop_billing,
)
from zgrid.chain.domains.nodes import signer_node
from zgrid.chain.errors import RejectCode
from zgrid.chain.records import (
    Approval,
    Contract,
    ContractIds,
    FarmIP,
    Node,
    Ref,
    Resources,
    ResultReport,
)
from zgrid.chain.units import U64, U64_MAX, UNITS_PER_TOKEN, Id
from zgrid.identity import verify

__all__ = [
    "APPROVE",
    "CANCEL",
    "CREATE_NAME",
    "CREATE_NODE",
    "CREATE_RENT",
    "MAX_APPROVERS",
    "MAX_SEALED_BYTES",
    "REPORT_RESOURCES",
    "REPORT_RESULT",
    "REPORT_TRAFFIC",
    "UPDATE_NODE",
    "bill_due",
    "end_contract",
    "live_contracts_on_node",
    "node_contract_of_signer",
]

MAX_SEALED_BYTES = 64 * 1024
MAX_APPROVERS = 64
HASH = r"^[0-9a-f]{64}$"


def _sealed(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64") from exc
    if not raw:
        raise ValueError("must not be empty")
    if len(raw) > MAX_SEALED_BYTES:
        raise ValueError(f"is {len(raw)} bytes, more than the {MAX_SEALED_BYTES} allowed")
    return value


def _unique(value: list[int] | None) -> list[int] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("names a twin twice")
    return value


Approvers = list[Id]


_RESOURCE_NAMES = {"cru": "cores", "mru": "memory", "sru": "SSD storage", "hru": "HDD storage"}
_BYTE_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def _bytes(value: int) -> str:
    """Bytes as a person reads them: 1288490188 -> '1.2 GiB', 4294967296 -> '4 GiB'."""
    for unit, size in _BYTE_UNITS:
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{value} bytes"


def _cores(count: int) -> str:
    return f"{count} core{'' if count == 1 else 's'}"


def _amounts(name: str, first: int, second: int) -> tuple[str, str]:
    """Two amounts of resource ``name`` in human units ("3 cores", "1.2 GiB of memory")."""
    if name == "cru":
        return _cores(first), _cores(second)
    shown = _bytes(first), _bytes(second)
    if shown[0] == shown[1]:  # rounded alike: the exact numbers tell them apart
        shown = f"{shown[0]} ({first} bytes)", f"{shown[1]} ({second} bytes)"
    return f"{shown[0]} of {_RESOURCE_NAMES[name]}", shown[1]


def _check_fits(node: Node, asked: Resources, held: Resources) -> None:
    """Refuse ``asked`` unless it fits what is free on ``node`` plus what the contract ``held``.

    Asking no more of a resource than the contract held always fits, also on a node that
    now declares less than its contracts reserve.
    """
    free = node.resources.minus(node.reserved.minus(held))
    for name in _RESOURCE_NAMES:
        want, have = getattr(asked, name), getattr(free, name)
        if want > have and want > getattr(held, name):
            shown_free, shown_asked = _amounts(name, have, want)
            holds = getattr(held, name)
            counting = (
                f" counting the {_cores(holds) if name == 'cru' else _bytes(holds)} "
                "the contract holds"
                if holds
                else ""
            )
            raise refuse(
                RejectCode.CONFLICT,
                f"node {node.id} has {shown_free} free{counting}, "
                f"the contract reserves {shown_asked}",
            )


def _reserve(ctx: CallContext, node: Node, asked: Resources, held: Resources) -> None:
    """Make ``asked`` the contract's share of ``node.reserved`` in place of ``held``."""
    if asked != held:
        reserved = node.reserved.minus(held).plus(asked)
        ctx.state.nodes.put(node.id, node.model_copy(update={"reserved": reserved}))


CAPACITY_DESCRIPTION = (
    "what the contract reserves on the node: cores (cru) and bytes of memory (mru), "
    "SSD (sru) and HDD (hru); the ledger refuses it unless it fits the node's free capacity"
)


class CreateNodeArgs(Args):
    node_id: Id
    deployment_hash: str = Field(pattern=HASH)
    sealed_deployment: str
    capacity: Resources = Field(default_factory=Resources, description=CAPACITY_DESCRIPTION)
    public_ips: int = Field(default=0, ge=0, le=16)
    approvers: Approvers = Field(
        default_factory=list,
        max_length=MAX_APPROVERS,
        description="twin ids of the deployment's signature requirement: who may approve it",
    )

    _check_sealed = field_validator("sealed_deployment")(_sealed)
    _check_approvers = field_validator("approvers")(_unique)


def _check_twins(ctx: CallContext, twin_ids: list[int]) -> None:
    missing = [twin_id for twin_id in twin_ids if twin_id not in ctx.state.twins]
    if missing:
        raise ctx.invalid("approvers", f"there is no twin {missing[0]}")


def _node(ctx: CallContext, node_id: int) -> Node:
    node = ctx.state.nodes.get(node_id)
    if node is None:
        raise refuse(RejectCode.NOT_FOUND, f"no node {node_id}")
    return node


def _reserve_ips(ctx: CallContext, node: Node, count: int, contract_id: int) -> list[FarmIP]:
    if not count:
        return []
    farm = ctx.state.farms.get(node.farm_id)
    assert farm is not None  # a node's farm is never removed
    free = [index for index, ip in enumerate(farm.public_ips) if not ip.contract_id]
    if len(free) < count:
        raise refuse(
            RejectCode.CONFLICT,
            f"farm {farm.id} has {len(free)} free public IP(s), the contract asks for {count}",
        )
    ips = list(farm.public_ips)
    taken: list[FarmIP] = []
    for index in free[:count]:
        ips[index] = ips[index].model_copy(update={"contract_id": contract_id})
        taken.append(ips[index])
    ctx.state.farms.put(farm.id, farm.model_copy(update={"public_ips": ips}))
    return taken


def _release_ips(ctx: LedgerContext, contract: Contract) -> None:
    if not contract.public_ips:
        return
    node = ctx.state.nodes.get(contract.node_id)
    farm = None if node is None else ctx.state.farms.get(node.farm_id)
    if farm is None:
        return
    ips = [
        ip.model_copy(update={"contract_id": 0}) if ip.contract_id == contract.id else ip
        for ip in farm.public_ips
    ]
    ctx.state.farms.put(farm.id, farm.model_copy(update={"public_ips": ips}))


def _store_new_contract(
    ctx: CallContext, contract_id: int, kind: str, twin_id: int, **fields: Any
) -> Contract:
    contract = Contract(
        id=contract_id,
        type=kind,
        twin_id=twin_id,
        created=ctx.timestamp,
        updated=ctx.timestamp,
        **fields,
    )
    ctx.state.contracts.put(contract_id, contract)
    start_billing(ctx, contract)
    if contract.node_id:
        _index_on_node(ctx, contract.node_id, add=contract.id)
    return contract


def _index_on_node(ctx: LedgerContext, node_id: int, *, add: int = 0, drop: int = 0) -> None:
    found = ctx.state.contracts_on_node.get(node_id)
    ids = [] if found is None else [cid for cid in found.ids if cid != drop]
    if add:
        ids.append(add)
    if ids:
        ctx.state.contracts_on_node.put(node_id, ContractIds(ids=ids))
    else:
        ctx.state.contracts_on_node.delete(node_id)


def _live_node_contracts(ctx: CallContext, node_id: int) -> list[Contract]:
    return [c for c in live_contracts_on_node(ctx, node_id) if c.type == "node"]


def live_contracts_on_node(ctx: LedgerContext, node_id: int) -> list[Contract]:
    """The node and rent contracts on ``node_id`` that are not deleted."""
    found = ctx.state.contracts_on_node.get(node_id)
    contracts = (ctx.state.contracts.get(cid) for cid in ([] if found is None else found.ids))
    return [c for c in contracts if c is not None and c.state != "deleted"]


def _ids(contracts: list[Contract]) -> str:
    return ", ".join(str(c.id) for c in contracts[:5])


def create_node_contract(ctx: CallContext, args: CreateNodeArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    _check_twins(ctx, args.approvers)
    node = _node(ctx, args.node_id)
    if node.rented_by and node.rented_by != twin.id:
        raise refuse(RejectCode.FORBIDDEN, f"node {node.id} is rented by twin {node.rented_by}")
    if node.power == "down":
        raise refuse(RejectCode.CONFLICT, f"node {node.id} is powered down")
    _check_fits(node, args.capacity, Resources())
    farm = ctx.state.farms.get(node.farm_id)
    assert farm is not None  # a node's farm is never removed
    policy = ctx.genesis.price_policy(farm.pricing_policy_id)
    assert policy is not None  # checked when the farm was created
    # The deployment is sealed, so the ledger can only ask for what it can price:
    # an hour of the public IPs, and something rather than nothing.
    ctx.require_free(
        ctx.signer,
        max(1, _tokens(ctx, policy.ipu * args.public_ips)),
        "a node contract",
    )
    contract_id = ctx.state.next_id("contract")
    _reserve(ctx, node, args.capacity, Resources())
    ips = _reserve_ips(ctx, node, args.public_ips, contract_id)
    _store_new_contract(
        ctx,
        contract_id,
        "node",
        twin.id,
        node_id=node.id,
        deployment_hash=args.deployment_hash,
        sealed_deployment=args.sealed_deployment,
        public_ips=ips,
        approvers=args.approvers,
        capacity=args.capacity,
    )
    ctx.emit(
        "ContractCreated",
        contract_id=contract_id,
        type="node",
        twin_id=twin.id,
        node_id=node.id,
        deployment_hash=args.deployment_hash,
        version=0,
        public_ips=[ip.model_dump() for ip in ips],
        capacity=args.capacity.model_dump(),
    )
    return {"contract_id": contract_id, "public_ips": [ip.model_dump() for ip in ips]}


def _tokens(ctx: CallContext, usd_units: int) -> int:
    """Token units of ``usd_units`` at the price in force, rounded up."""
    return -(-usd_units * UNITS_PER_TOKEN // money.token_price(ctx.state, ctx.genesis))


def _owned_contract(ctx: CallContext, contract_id: int) -> Contract:
    contract = ctx.state.contracts.get(contract_id)
    if contract is None:
        raise refuse(RejectCode.NOT_FOUND, f"no contract {contract_id}")
    twin = ctx.signer_twin()
    if contract.twin_id != twin.id:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"contract {contract_id} belongs to twin {contract.twin_id}, not {twin.id}",
        )
    if contract.state == "deleted":
        raise refuse(
            RejectCode.CONFLICT, f"contract {contract_id} is deleted ({contract.deleted_reason})"
        )
    return contract


class UpdateNodeArgs(Args):
    contract_id: Id
    deployment_hash: str = Field(pattern=HASH)
    sealed_deployment: str
    approvers: Approvers | None = Field(
        default=None,
        max_length=MAX_APPROVERS,
        description="the new deployment's signers; left out, they stay as they were",
    )
    capacity: Resources | None = Field(
        default=None,
        description="what the new deployment reserves; left out, the contract keeps what it had",
    )

    _check_sealed = field_validator("sealed_deployment")(_sealed)
    _check_approvers = field_validator("approvers")(_unique)


def update_node_contract(ctx: CallContext, args: UpdateNodeArgs) -> dict[str, Any]:
    contract = _owned_contract(ctx, args.contract_id)
    if contract.type != "node":
        raise refuse(
            RejectCode.CONFLICT,
            f"contract {contract.id} is a {contract.type} contract, not a node contract",
        )
    if args.approvers is not None:
        _check_twins(ctx, args.approvers)
    capacity = contract.capacity if args.capacity is None else args.capacity
    if capacity != contract.capacity:
        node = _node(ctx, contract.node_id)
        # What the node reports used may stay above a smaller capacity until it has
        # applied the new deployment and reports again.
        _check_fits(node, capacity, contract.capacity)
        _reserve(ctx, node, capacity, contract.capacity)
    version = contract.version + 1
    updated = contract.model_copy(
        update={
            "capacity": capacity,
            "deployment_hash": args.deployment_hash,
            "sealed_deployment": args.sealed_deployment,
            "version": version,
            "approvers": contract.approvers if args.approvers is None else args.approvers,
            "approvals": [],
            "updated": ctx.timestamp,
        }
    )
    ctx.state.contracts.put(contract.id, updated)
    ctx.emit(
        "ContractUpdated",
        contract_id=contract.id,
        twin_id=contract.twin_id,
        node_id=contract.node_id,
        deployment_hash=args.deployment_hash,
        version=version,
        capacity=capacity.model_dump(),
    )
    return {"contract_id": contract.id, "version": version}


class CreateNameArgs(Args):
    name: str = Field(pattern=r"^[a-z0-9_-]{3,64}$")


def create_name_contract(ctx: CallContext, args: CreateNameArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    taken = ctx.state.contract_by_name.get(args.name)
    if taken is not None:
        raise refuse(RejectCode.CONFLICT, f"name {args.name!r} is taken by contract {taken.id}")
    policy = ctx.genesis.price_policies[0]
    ctx.require_free(ctx.signer, max(1, _tokens(ctx, policy.unique_name)), "a name contract")
    contract_id = ctx.state.next_id("contract")
    _store_new_contract(ctx, contract_id, "name", twin.id, name=args.name)
    ctx.state.contract_by_name.put(args.name, Ref(id=contract_id))
    ctx.emit(
        "ContractCreated", contract_id=contract_id, type="name", twin_id=twin.id, name=args.name
    )
    return {"contract_id": contract_id}


class CreateRentArgs(Args):
    node_id: Id


def create_rent_contract(ctx: CallContext, args: CreateRentArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    node = _node(ctx, args.node_id)
    if node.rented_by:
        raise refuse(
            RejectCode.CONFLICT, f"node {node.id} is already rented by twin {node.rented_by}"
        )
    others = [c for c in _live_node_contracts(ctx, node.id) if c.twin_id != twin.id]
    if others:
        raise refuse(
            RejectCode.CONFLICT, f"node {node.id} runs contracts of other twins ({_ids(others)})"
        )
    ctx.require_free(ctx.signer, 1, "a rent contract")
    contract_id = ctx.state.next_id("contract")
    _store_new_contract(ctx, contract_id, "rent", twin.id, node_id=node.id)
    ctx.state.nodes.put(
        node.id, node.model_copy(update={"rented_by": twin.id, "rent_contract_id": contract_id})
    )
    ctx.emit(
        "ContractCreated", contract_id=contract_id, type="rent", twin_id=twin.id, node_id=node.id
    )
    return {"contract_id": contract_id}


class ContractIdArgs(Args):
    contract_id: Id


def cancel(ctx: CallContext, args: ContractIdArgs) -> dict[str, Any]:
    contract = _owned_contract(ctx, args.contract_id)
    if contract.type == "rent":
        active = _live_node_contracts(ctx, contract.node_id)
        if active:
            raise refuse(
                RejectCode.CONFLICT,
                f"cancel the node contracts on node {contract.node_id} first ({_ids(active)})",
            )
    end_contract(ctx, contract, "canceled_by_user")
    return {"contract_id": contract.id}


def end_contract(
    ctx: LedgerContext, contract: Contract, reason: str, *, bill_first: bool = True
) -> None:
    """Delete ``contract``: bill it up to now (unless ``bill_first`` is False: it was just
    billed), then free what it holds on its node (rent, IPs, reserved and used capacity)
    or its name."""
    if bill_first:
        contract = bill_contract(ctx, contract, final=True)
    stop_billing(ctx, contract)
    if contract.node_id:
        _index_on_node(ctx, contract.node_id, drop=contract.id)
    if contract.type == "rent":
        node = ctx.state.nodes.get(contract.node_id)
        if node is not None:
            ctx.state.nodes.put(
                node.id, node.model_copy(update={"rented_by": 0, "rent_contract_id": 0})
            )
    elif contract.type == "name":
        ctx.state.contract_by_name.delete(contract.name)
    else:
        _release_ips(ctx, contract)
        node = ctx.state.nodes.get(contract.node_id)
        if node is not None:
            ctx.state.nodes.put(
                node.id,
                node.model_copy(
                    update={
                        "used": node.used.minus(contract.used),
                        "reserved": node.reserved.minus(contract.capacity),
                    }
                ),
            )
    ctx.state.contracts.put(
        contract.id,
        contract.model_copy(
            update={
                "state": "deleted",
                "deleted_reason": reason,
                "updated": ctx.timestamp,
            }
        ),
    )
    ctx.emit(
        "ContractCanceled",
        contract_id=contract.id,
        type=contract.type,
        twin_id=contract.twin_id,
        node_id=contract.node_id,
        reason=reason,
    )


class ApproveArgs(Args):
    contract_id: Id
    deployment_hash: str = Field(pattern=HASH)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


def approve(ctx: CallContext, args: ApproveArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    contract = ctx.state.contracts.get(args.contract_id)
    if contract is None or contract.type != "node":
        raise refuse(RejectCode.NOT_FOUND, f"no node contract {args.contract_id}")
    if contract.state == "deleted":
        raise refuse(RejectCode.CONFLICT, f"contract {contract.id} is deleted")
    if twin.id not in contract.approvers:
        named = ", ".join(map(str, contract.approvers)) or "none"
        raise refuse(
            RejectCode.FORBIDDEN,
            f"twin {twin.id} is not a signer of contract {contract.id}'s deployment "
            f"(its signers: {named}); only they may approve it",
        )
    if args.deployment_hash != contract.deployment_hash:
        raise refuse(
            RejectCode.CONFLICT,
            f"contract {contract.id} is at deployment {contract.deployment_hash[:16]}…, not {args.deployment_hash[:16]}…",
        )
    if not verify(
        bytes.fromhex(twin.account),
        bytes.fromhex(args.deployment_hash),
        bytes.fromhex(args.signature),
    ):
        raise refuse(
            RejectCode.BAD_SIGNATURE,
            f"the approval is not twin {twin.id}'s signature of the deployment hash",
        )
    approvals = [a for a in contract.approvals if a.twin_id != twin.id]
    approvals.append(
        Approval(twin_id=twin.id, signature=args.signature, deployment_hash=args.deployment_hash)
    )
    ctx.state.contracts.put(contract.id, contract.model_copy(update={"approvals": approvals}))
    ctx.emit(
        "ContractApproved",
        contract_id=contract.id,
        node_id=contract.node_id,
        twin_id=twin.id,
        deployment_hash=args.deployment_hash,
        signature=args.signature,
        version=contract.version,
    )
    return {"contract_id": contract.id}


def node_contract_of_signer(ctx: CallContext, contract_id: int) -> tuple[Node, Contract]:
    """The signer node's live contract ``contract_id``: what a node may report on."""
    node = signer_node(ctx)
    contract = ctx.state.contracts.get(contract_id)
    if contract is None or contract.type != "node":
        raise refuse(RejectCode.NOT_FOUND, f"no node contract {contract_id}")
    if contract.node_id != node.id:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"contract {contract_id} runs on node {contract.node_id}, not on node {node.id}",
        )
    if contract.state == "deleted":
        raise refuse(RejectCode.CONFLICT, f"contract {contract.id} is deleted")
    return node, contract


class ReportResultArgs(Args):
    contract_id: Id
    version: U64
    sealed_results: str

    _check_sealed = field_validator("sealed_results")(_sealed)


def report_result(ctx: CallContext, args: ReportResultArgs) -> dict[str, Any]:
    _, contract = node_contract_of_signer(ctx, args.contract_id)
    if args.version > contract.version:
        raise ctx.invalid(
            "version",
            f"contract {contract.id} is at version {contract.version}, not {args.version}",
        )
    report = ResultReport(
        version=args.version, sealed_results=args.sealed_results, reported=ctx.timestamp
    )
    ctx.state.contracts.put(contract.id, contract.model_copy(update={"result": report}))
    ctx.emit(
        "ContractResultReported",
        contract_id=contract.id,
        node_id=contract.node_id,
        twin_id=contract.twin_id,
        version=args.version,
    )
    return {"contract_id": contract.id}


class ReportResourcesArgs(Args):
    contract_id: Id
    used: Resources


def report_resources(ctx: CallContext, args: ReportResourcesArgs) -> dict[str, Any]:
    node, contract = node_contract_of_signer(ctx, args.contract_id)
    for name in _RESOURCE_NAMES:
        used, declared = getattr(args.used, name), getattr(contract.capacity, name)
        if used > declared:
            shown_used, shown_declared = _amounts(name, used, declared)
            raise ctx.invalid(
                f"used.{name}",
                f"{shown_used} is more than the {shown_declared} contract {contract.id} reserves",
            )
    others = node.used.minus(contract.used)
    overflowing = others.overflow(args.used)
    if overflowing is not None:
        raise ctx.invalid(
            f"used.{overflowing}",
            f"node {node.id}'s contracts would use more than {U64_MAX} {overflowing} together",
        )
    ctx.state.nodes.put(node.id, node.model_copy(update={"used": others.plus(args.used)}))
    contract = contract.model_copy(update={"used": args.used})
    ctx.state.contracts.put(contract.id, contract)
    reprice(ctx, contract)
    ctx.emit(
        "ContractResourcesReported",
        contract_id=contract.id,
        node_id=node.id,
        used=args.used.model_dump(),
    )
    return {"contract_id": contract.id}


class TrafficArgs(Args):
    contract_id: Id
    bytes: int = Field(ge=0, le=MAX_TRAFFIC_REPORT, description="bytes since the last report")


def report_traffic(ctx: CallContext, args: TrafficArgs) -> dict[str, Any]:
    """A node reports network traffic of one of its contracts, billed at its next bill."""
    _, contract = node_contract_of_signer(ctx, args.contract_id)
    billing = ctx.state.billing_of(contract.id)
    if billing.traffic + args.bytes > U64_MAX:
        raise ctx.invalid(
            "bytes", f"contract {contract.id} has more traffic unbilled than the ledger counts"
        )
    ctx.state.billing.put(
        contract.id, billing.model_copy(update={"traffic": billing.traffic + args.bytes})
    )
    ctx.emit(
        "ContractTrafficReported",
        contract_id=contract.id,
        node_id=contract.node_id,
        bytes=args.bytes,
    )
    return {"contract_id": contract.id}


def bill_due(ctx: LedgerContext, contract_id: int, due: int) -> None:
    """The bill of ``contract_id`` scheduled for ``due`` (a block step's item); a contract
    whose grace period ran out is deleted for lack of funds, its IPs and name released."""
    contract = ctx.state.contracts.get(contract_id)
    if contract is None or contract.state == "deleted":
        return
    if ctx.state.billing_of(contract_id).next_bill != due:
        return  # billed when it ended, or rescheduled since
    contract = bill_contract(ctx, contract)
    if grace_expired(ctx, contract):
        forgive(ctx, contract)
        end_contract(ctx, contract, "out_of_funds", bill_first=False)


CREATE_NODE = Call(CreateNodeArgs, create_node_contract)
UPDATE_NODE = Call(UpdateNodeArgs, update_node_contract)
CREATE_NAME = Call(CreateNameArgs, create_name_contract)
CREATE_RENT = Call(CreateRentArgs, create_rent_contract)
CANCEL = Call(ContractIdArgs, cancel)
APPROVE = Call(ApproveArgs, approve)
REPORT_RESULT = Call(ReportResultArgs, report_result)
REPORT_RESOURCES = Call(ReportResourcesArgs, report_resources)
REPORT_TRAFFIC = Call(TrafficArgs, report_traffic)
