"""The concrete ledger state: one typed table per kind of record, plus the indexes."""

from __future__ import annotations

from zgrid.chain.records import (
    Account,
    Bill,
    Billing,
    Contract,
    ContractIds,
    Counter,
    Farm,
    Node,
    Ref,
    Reward,
    ScheduleChunk,
    Twin,
    UsedJoinToken,
)
from zgrid.chain.state import State

__all__ = ["LedgerState", "bill_key", "reward_key"]


class LedgerState(State):
    def __init__(self) -> None:
        super().__init__()
        self.counters = self.table("counters", Counter)
        self.accounts = self.table("accounts", Account)
        self.twins = self.table("twins", Twin)
        self.twin_by_account = self.table("twin_by_account", Ref)
        self.farms = self.table("farms", Farm)
        self.farm_by_name = self.table("farm_by_name", Ref)
        self.nodes = self.table("nodes", Node)
        self.node_by_twin = self.table("node_by_twin", Ref)
        self.contracts = self.table("contracts", Contract)
        self.contract_by_name = self.table("contract_by_name", Ref)
        self.contracts_on_node = self.table("contracts_on_node", ContractIds)  # live ones
        self.join_tokens = self.table("join_tokens", UsedJoinToken)  # "<farm id>-<token id>"
        self.schedule = self.table("schedule", ScheduleChunk)  # "<minute>:<chunk>"
        self.schedule_counts = self.table("schedule_counts", Counter)  # entries per minute
        self.billing = self.table("billing", Billing)  # contract id
        self.bills = self.table("bills", Bill)  # "<contract id>:<bill number>"
        self.rewards = self.table("rewards", Reward)  # "<node id>:<period>"

    def counter(self, name: str) -> int:
        found = self.counters.get(name)
        return 0 if found is None else found.value

    def set_counter(self, name: str, value: int) -> None:
        self.counters.put(name, Counter(value=value))

    def next_id(self, name: str) -> int:
        """The next id of a kind of record, starting at 1."""
        value = self.counter(name) + 1
        self.set_counter(name, value)
        return value

    def total_balances(self) -> int:
        return sum(account.free + account.reserved for account in self.accounts.values())

    def billing_of(self, contract_id: int) -> Billing:
        return self.billing.get(contract_id) or Billing()

    def twin_of_account(self, address: str) -> Twin | None:
        ref = self.twin_by_account.get(address)
        return None if ref is None else self.twins.get(ref.id)


def bill_key(contract_id: int, number: int) -> str:
    return f"{contract_id}:{number}"


def reward_key(node_id: int, period: int) -> str:
    return f"{node_id}:{period}"
