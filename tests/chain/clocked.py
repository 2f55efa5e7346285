"""An in-process ledger whose clock the test moves: days of ledger time in seconds.

Blocks are produced on demand. A block's time is fixed when it opens (right after the
previous one is sealed), and what ledger time made due (bills, farming periods) runs then,
before its transactions: ``step(seconds)`` moves the clock, seals the open block and opens
the next at the new time, so transactions submitted after it land at that time.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zgrid.chain import (
    UNITS_PER_TOKEN,
    ChainEvent,
    Ledger,
    SignedTransaction,
    issue_join_token,
    sign_transaction,
)
from zgrid.chain.domains import money
from zgrid.chain.records import Bill
from zgrid.identity import Identity

FAUCET_MAX_TOKENS = 1000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class ClockedChain:
    """A ledger on ``data`` with a clock starting at ``start`` (keep it minute-aligned)."""

    data: Path
    start: int
    clock: Clock = field(init=False)
    ledger: Ledger = field(init=False)
    loop: asyncio.AbstractEventLoop = field(init=False)
    nonces: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)  # fees each signer paid

    def __post_init__(self) -> None:
        self.clock = Clock(float(self.start))
        self.loop = asyncio.new_event_loop()
        self.ledger = Ledger.open(self.data, clock=self.clock)

    def close(self) -> None:
        self.ledger.close()
        self.loop.close()

    @property
    def now(self) -> int:
        """The open block's time: what the next transaction sees."""
        return self.ledger._open.timestamp

    @property
    def height(self) -> int:
        return self.ledger._open.height

    def submit(self, who: Identity, call: str, args: dict[str, Any]) -> dict[str, Any]:
        nonce = self.nonces.get(who.address, 0)
        tx: SignedTransaction = sign_transaction(
            who, chain_id=self.ledger.chain_id, nonce=nonce, call=call, args=args
        )
        status = self.ledger.submit(tx)
        self.nonces[who.address] = nonce + 1
        if call != "accounts.faucet":
            fee = self.ledger.genesis.transaction_fee
            self.fees[who.address] = self.fees.get(who.address, 0) + fee
        return status.result

    def step(self, seconds: int) -> list[ChainEvent]:
        """Seal the open block, move the clock, open the next: returns the new block's
        events so far (what ledger time made due in it)."""
        self.clock.now += seconds
        self.loop.run_until_complete(self.ledger.produce_block())
        return list(self.ledger._open.events)

    def seal(self) -> None:
        self.loop.run_until_complete(self.ledger.produce_block())

    # -- reading ------------------------------------------------------------------------------

    def free(self, address: str) -> int:
        return money.free_balance(self.ledger.state, address)

    def bill(self, contract_id: int, number: int) -> Bill:
        """Bill ``number`` of ``contract_id`` as the API shows it: the state's record of a
        bill not paid at once, else its ContractBilled event (not yet stored, or stored)."""
        kept = self.ledger.state.bills.get(f"{contract_id}:{number}")
        if kept is not None:
            return kept
        made = [
            e.data
            for e in self.ledger.unstored_events()
            if e.name == "ContractBilled" and e.data["contract_id"] == contract_id
        ]
        made += self.ledger.store.contract_bills(contract_id, number, number)
        found = [data for data in made if data["number"] == number]
        assert found, f"contract {contract_id} has no bill {number}"
        return Bill.model_validate({key: found[0][key] for key in Bill.model_fields})

    def supply(self) -> money.Supply:
        return money.supply(self.ledger.state, self.ledger.genesis)

    # -- making things --------------------------------------------------------------------------

    def funded(self, tokens: int = 100) -> Identity:
        who = Identity(secrets.token_bytes(32))
        left = tokens
        while left > 0:
            part = min(left, FAUCET_MAX_TOKENS)
            self.submit(who, "accounts.faucet", {"amount": part * UNITS_PER_TOKEN})
            left -= part
        return who

    def twin(self, tokens: int = 100) -> tuple[Identity, int]:
        who = self.funded(tokens)
        return who, int(self.submit(who, "twins.create", {})["twin_id"])

    def farm(self, farmer: Identity, name: str, ips: list[str] = ()) -> int:  # type: ignore[assignment]
        farm_id = int(self.submit(farmer, "farms.create", {"name": name})["farm_id"])
        for ip in ips:
            self.submit(
                farmer,
                "farms.add_ip",
                {"farm_id": farm_id, "ip": f"{ip}/24", "gateway": ip.rsplit(".", 1)[0] + ".1"},
            )
        return farm_id

    def node(
        self, farmer: Identity, farm_id: int, resources: dict[str, int]
    ) -> tuple[Identity, int]:
        node, _ = self.twin(10)
        token = issue_join_token(
            farmer, chain_id=self.ledger.chain_id, farm_id=farm_id, expires=self.now + 3600
        )
        result = self.submit(
            node,
            "nodes.register",
            {"farm_id": farm_id, "resources": resources, "join_token": token.encode()},
        )
        return node, int(result["node_id"])
