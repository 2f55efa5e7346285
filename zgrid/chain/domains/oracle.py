"""The price oracle: the token's price in USD, a ledger value only the oracle account named
in genesis may set. Bills and rewards use the price in force when they are made; a chain
whose genesis names no oracle (a devnet) keeps the genesis price."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zgrid.chain.domains import money
from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.errors import RejectCode

__all__ = ["MAX_PRICE", "SET_PRICE"]

MAX_PRICE = 10**15  # units USD per token: 100 million USD, far past any real price


class SetPriceArgs(Args):
    token_price: int = Field(ge=1, le=MAX_PRICE, description="units USD per token")


def set_price(ctx: CallContext, args: SetPriceArgs) -> dict[str, Any]:
    oracle = ctx.genesis.oracle
    if oracle is None:
        raise refuse(
            RejectCode.FORBIDDEN, "this chain has no price oracle: its token price is fixed"
        )
    if ctx.signer != oracle:
        raise refuse(
            RejectCode.FORBIDDEN,
            f"only the oracle account {oracle[:16]}… sets the token price",
        )
    previous = money.token_price(ctx.state, ctx.genesis)
    ctx.state.set_counter(money.TOKEN_PRICE, args.token_price)
    ctx.emit("TokenPriceSet", token_price=args.token_price, previous=previous)
    return {"token_price": args.token_price}


SET_PRICE = Call(SetPriceArgs, set_price)
