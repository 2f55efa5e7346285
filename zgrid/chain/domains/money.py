"""Moving tokens: credits, debits, burning and minting, and the supply they keep account of.

Burned tokens leave every balance (fees, the burned share of each payment); minted ones
(farming rewards) enter one. The counters ``burned`` and ``minted`` record both, so at
every block the balances add up to genesis supply + minted − burned, which verification
checks. The token price is a ledger value the oracle sets, the genesis price until then.
"""

from __future__ import annotations

from zgrid.chain.genesis import Genesis
from zgrid.chain.records import Account
from zgrid.chain.tables import LedgerState
from zgrid.chain.units import MAX_AMOUNT

__all__ = [
    "Supply",
    "burn",
    "count_burned",
    "credit",
    "free_balance",
    "mint",
    "supply",
    "take",
    "token_price",
]

TOKEN_PRICE = "token_price"
MINTED = "minted"
BURNED = "burned"


def _account(state: LedgerState, address: str) -> Account:
    return state.accounts.get(address) or Account(address=address)


def free_balance(state: LedgerState, address: str) -> int:
    found = state.accounts.get(address)
    return 0 if found is None else found.free


def credit(state: LedgerState, address: str, amount: int) -> None:
    if amount:
        account = _account(state, address)
        state.accounts.put(address, account.model_copy(update={"free": account.free + amount}))


def take(state: LedgerState, address: str, amount: int) -> None:
    """Debit ``amount`` the caller made sure the account has."""
    if amount:
        account = _account(state, address)
        if account.free < amount:
            raise ValueError(f"account {address[:16]}… has {account.free}, not {amount}")
        state.accounts.put(address, account.model_copy(update={"free": account.free - amount}))


def burn(state: LedgerState, address: str, amount: int) -> None:
    """Take ``amount`` out of the account and out of the supply."""
    if amount:
        take(state, address, amount)
        count_burned(state, amount)


def count_burned(state: LedgerState, amount: int) -> None:
    """Count ``amount`` the caller already took out of an account as burned."""
    if amount:
        state.set_counter(BURNED, state.counter(BURNED) + amount)


def mint(state: LedgerState, genesis: Genesis, address: str, amount: int) -> int:
    """Add new tokens to the account, no more than the ledger can hold; returns what was minted."""
    room = MAX_AMOUNT - supply(state, genesis).total
    amount = max(0, min(amount, room))
    if amount:
        credit(state, address, amount)
        state.set_counter(MINTED, state.counter(MINTED) + amount)
    return amount


def token_price(state: LedgerState, genesis: Genesis) -> int:
    """Units USD per token in force now."""
    return state.counter(TOKEN_PRICE) or genesis.token_price


class Supply:
    """Tokens issued at genesis, minted since, burned since, and what is left."""

    __slots__ = ("burned", "genesis", "minted")

    def __init__(self, genesis: int, minted: int, burned: int) -> None:
        self.genesis, self.minted, self.burned = genesis, minted, burned

    @property
    def total(self) -> int:
        return self.genesis + self.minted - self.burned

    def as_dict(self) -> dict[str, int]:
        return {
            "genesis": self.genesis,
            "minted": self.minted,
            "burned": self.burned,
            "total": self.total,
        }


def supply(state: LedgerState, genesis: Genesis) -> Supply:
    return Supply(genesis.supply, state.counter(MINTED), state.counter(BURNED))
