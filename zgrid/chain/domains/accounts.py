"""Balances: transfers between accounts and, on dev chains, the faucet."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.domains.billing import settle_debts
from zgrid.chain.errors import RejectCode
from zgrid.chain.units import Amount, format_tokens

__all__ = ["FAUCET", "TRANSFER"]

ADDRESS = r"^[0-9a-f]{64}$"


class TransferArgs(Args):
    to: str = Field(pattern=ADDRESS)
    amount: Amount


def transfer(ctx: CallContext, args: TransferArgs) -> dict[str, Any]:
    if args.to == ctx.signer:
        raise ctx.invalid("to", "cannot transfer to yourself")
    ctx.debit(ctx.signer, args.amount)
    ctx.credit(args.to, args.amount)
    ctx.emit("Transfer", **{"from": ctx.signer, "to": args.to, "amount": args.amount})
    settle_debts(ctx, args.to)
    return {"amount": args.amount}


class FaucetArgs(Args):
    amount: Amount


def faucet(ctx: CallContext, args: FaucetArgs) -> dict[str, Any]:
    source = ctx.genesis.faucet
    if source is None:
        raise refuse(RejectCode.FORBIDDEN, "this chain has no faucet (dev chains only)")
    if args.amount > ctx.genesis.faucet_max:
        raise ctx.invalid(
            "amount",
            f"the faucet gives at most {format_tokens(ctx.genesis.faucet_max)} tokens per call",
        )
    if ctx.signer == source:
        raise refuse(RejectCode.INVALID_ARGS, "the faucet cannot pay itself")
    ctx.debit(source, args.amount)
    ctx.credit(ctx.signer, args.amount)
    ctx.emit("Transfer", **{"from": source, "to": ctx.signer, "amount": args.amount})
    settle_debts(ctx, ctx.signer)
    return {"amount": args.amount}


TRANSFER = Call(TransferArgs, transfer)
# A new account's first step is the faucet, with nothing to pay a fee from. The faucet
# exists only on dev chains, where tokens are free anyway.
FAUCET = Call(FaucetArgs, faucet, pays_fee=False)
