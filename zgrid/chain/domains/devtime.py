"""Dev chains only: moving ledger time forward at once, so days of billing, grace periods
and farming periods can be tried in seconds. The offset is ledger state, so every block
after the call is stamped that much later and verification replays the same chain; a
chain without a faucet (production) refuses the call."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from zgrid.chain.domains.base import Args, Call, CallContext, refuse
from zgrid.chain.errors import RejectCode
from zgrid.chain.tables import LedgerState

__all__ = ["ADVANCE_TIME", "MAX_ADVANCE", "TIME_OFFSET", "time_offset"]

MAX_ADVANCE = 366 * 86400  # seconds one call may move ledger time
TIME_OFFSET = "time_offset"


def time_offset(state: LedgerState) -> int:
    """Seconds dev calls moved ledger time ahead of the clock, together."""
    return state.counter(TIME_OFFSET)


class AdvanceArgs(Args):
    seconds: int = Field(ge=1, le=MAX_ADVANCE, description="seconds to move ledger time ahead")


def advance_time(ctx: CallContext, args: AdvanceArgs) -> dict[str, Any]:
    if ctx.genesis.faucet is None:
        raise refuse(
            RejectCode.FORBIDDEN,
            "only dev chains (a genesis with a faucet) move ledger time; this one follows the clock",
        )
    offset = time_offset(ctx.state) + args.seconds
    ctx.state.set_counter(TIME_OFFSET, offset)
    ctx.emit("LedgerTimeAdvanced", seconds=args.seconds, offset=offset)
    return {"seconds": args.seconds, "from_block": ctx.height + 1}


ADVANCE_TIME = Call(AdvanceArgs, advance_time)
