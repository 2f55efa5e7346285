"""The concrete ledger state: one typed table per kind of record, plus the indexes."""

from __future__ import annotations

from zgrid.chain.records import Account, Contract, Counter, Farm, Node, Ref, Twin, UsedJoinToken
from zgrid.chain.state import State

__all__ = ["LedgerState"]


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
        self.join_tokens = self.table("join_tokens", UsedJoinToken)  # "<farm id>-<token id>"

    def counter(self, name: str) -> int:
        found = self.counters.get(name)
        return 0 if found is None else found.value

    def next_id(self, name: str) -> int:
        """The next id of a kind of record, starting at 1."""
        value = self.counter(name) + 1
        self.counters.put(name, Counter(value=value))
        return value

    def total_balances(self) -> int:
        return sum(account.free + account.reserved for account in self.accounts.values())
