"""Twins: the on-ledger identity of an account, one per account, others seal to its key."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.errors import RejectCode
from zgrid.chain.records import Ref, Twin

__all__ = ["CREATE", "UPDATE"]


class TwinArgs(Args):
    relay: str = Field(default="", max_length=253, description="where messages for the twin go")


def create(ctx: CallContext, args: TwinArgs) -> dict[str, Any]:
    existing = ctx.state.twin_by_account.get(ctx.signer)
    if existing is not None:
        raise refuse(
            RejectCode.CONFLICT,
            f"this account already has twin {existing.id} (`zgrid twin show` shows it)",
        )
    twin_id = ctx.state.next_id("twin")
    ctx.state.twins.put(
        twin_id, Twin(id=twin_id, account=ctx.signer, relay=args.relay, created=ctx.timestamp)
    )
    ctx.state.twin_by_account.put(ctx.signer, Ref(id=twin_id))
    ctx.emit("TwinCreated", twin_id=twin_id, account=ctx.signer, relay=args.relay)
    return {"twin_id": twin_id}


def update(ctx: CallContext, args: TwinArgs) -> dict[str, Any]:
    twin = ctx.signer_twin()
    ctx.state.twins.put(twin.id, twin.model_copy(update={"relay": args.relay}))
    ctx.emit("TwinUpdated", twin_id=twin.id, relay=args.relay)
    return {"twin_id": twin.id}


CREATE = Call(TwinArgs, create)
UPDATE = Call(TwinArgs, update)
