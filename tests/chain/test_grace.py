"""Grace periods: a contract its twin cannot pay owes its bills, a top-up pays them and
restores it, fourteen days unpaid delete it for lack of funds and release what it held."""

from __future__ import annotations

from pathlib import Path

from tests.chain.clocked import ClockedChain
from zgrid.chain import UNITS_PER_TOKEN, init_dev_chain, verify_chain
from zgrid.chain.records import Billing, Contract
from zgrid.identity import Identity

GIB = 1024**3
HOUR = 3600
DAY = 86400
START = 2_000_001_600
HASH = "ab" * 32
SEALED = "c2VhbGVk"


def _contract(chain: ClockedChain, contract_id: int) -> Contract:
    found = chain.ledger.state.contracts.get(contract_id)
    assert found is not None
    return found


def _billing(chain: ClockedChain, contract_id: int) -> Billing:
    return chain.ledger.state.billing_of(contract_id)


def _setup(
    chain: ClockedChain, tokens: int, farm_name: str = "farm-g"
) -> tuple[Identity, Identity, int, int]:
    farmer, _ = chain.twin(100)
    farm = chain.farm(farmer, farm_name, ["203.0.113.20"])
    node, node_id = chain.node(
        farmer, farm, {"cru": 8, "mru": 32 * GIB, "sru": 512 * GIB, "hru": 0}
    )
    deployer, _ = chain.twin(tokens)
    capacity = {"cru": 2, "mru": 4 * GIB, "sru": 50 * GIB, "hru": 0}
    contract_id = int(
        chain.submit(
            deployer,
            "contracts.create_node_contract",
            {
                "node_id": node_id,
                "deployment_hash": HASH,
                "sealed_deployment": SEALED,
                "capacity": capacity,
                "public_ips": 1,
            },
        )["contract_id"]
    )
    chain.submit(node, "contracts.report_resources", {"contract_id": contract_id, "used": capacity})
    return deployer, node, farm, contract_id


def test_dry_twin_enters_grace_a_top_up_pays_the_debt_and_14_days_unpaid_delete(
    memory_dir: Path,
) -> None:
    data = memory_dir / "chain"
    init_dev_chain(data)
    chain = ClockedChain(data, START)
    try:
        # 0.1525 tokens an hour: two tokens last 13 hours.
        deployer, _, farm, contract_id = _setup(chain, 2)
        name_id = int(
            chain.submit(deployer, "contracts.create_name_contract", {"name": "dry-name"})[
                "contract_id"
            ]
        )
        started: list[int] = []
        while _contract(chain, contract_id).state == "created":
            events = chain.step(HOUR)
            started += [
                e.data["contract_id"] for e in events if e.name == "ContractGracePeriodStarted"
            ]
            assert chain.now < START + 2 * DAY, "the twin never ran dry"
        assert contract_id in started
        billing = _billing(chain, contract_id)
        assert billing.grace_since == chain.now and billing.owed > 0
        owed_bill = chain.ledger.state.bills.get(f"{contract_id}:{billing.bills}")
        assert owed_bill is not None and owed_bill.status == "owed"
        assert owed_bill.split.burned == 0  # nothing was paid, nothing split
        twin = chain.ledger.state.twin_of_account(deployer.address)
        assert twin is not None and contract_id in twin.grace

        # Unpaid hours keep adding to the debt.
        for _ in range(3):
            chain.step(HOUR)
        assert _contract(chain, contract_id).state == "grace_period"
        billing = _billing(chain, contract_id)
        owed = [
            chain.ledger.state.bills.get(f"{contract_id}:{n}")
            for n in range(billing.first_owed_bill, billing.bills + 1)
        ]
        assert all(b is not None and b.status == "owed" for b in owed)
        assert billing.owed == sum(b.amount for b in owed if b is not None)

        # A top-up pays every owed bill (split like any payment) and restores the contract
        # in the same transaction.
        helper = chain.funded(100)
        balance = chain.free(deployer.address)
        result = chain.submit(
            helper, "accounts.transfer", {"to": deployer.address, "amount": 50 * UNITS_PER_TOKEN}
        )
        assert result == {"amount": 50 * UNITS_PER_TOKEN}
        restored = _contract(chain, contract_id)
        assert (restored.state, _billing(chain, contract_id).owed) == ("created", 0)
        paid = [chain.ledger.state.bills.get(f"{contract_id}:{b.number}") for b in owed if b]
        assert all(b is not None and b.status == "paid" and b.split.burned > 0 for b in paid)
        name_owed = _billing(chain, name_id).owed
        assert chain.free(deployer.address) == (
            balance + 50 * UNITS_PER_TOKEN - billing.owed - name_owed
        )
        twin = chain.ledger.state.twin_of_account(deployer.address)
        assert twin is not None and twin.grace == []

        # Dry again, and left unpaid: deleted after 14 days of ledger time, IP and name released.
        while _contract(chain, contract_id).state == "created":
            chain.step(6 * HOUR)
        since = _billing(chain, contract_id).grace_since
        while chain.now + 6 * HOUR < since + 14 * DAY:
            chain.step(6 * HOUR)
            assert _contract(chain, contract_id).state == "grace_period"
        ended: list[str] = []
        while _contract(chain, contract_id).state != "deleted":
            events = chain.step(HOUR)
            ended += [e.data["reason"] for e in events if e.name == "ContractCanceled"]
            assert chain.now <= since + 14 * DAY + 2 * HOUR
        contract = _contract(chain, contract_id)
        assert contract.deleted_reason == "out_of_funds" and "out_of_funds" in ended
        assert chain.now - since >= 14 * DAY
        billing = _billing(chain, contract_id)
        left = [
            chain.ledger.state.bills.get(f"{contract_id}:{n}")
            for n in range(billing.first_owed_bill, billing.bills + 1)
        ]
        assert all(b is not None and b.status == "unpaid" for b in left)
        farm_record = chain.ledger.state.farms.get(farm)
        assert farm_record is not None
        assert [ip.contract_id for ip in farm_record.public_ips] == [0]
        # The cheap name contract went on paying from what was left; it ran dry later.
        name_since = _billing(chain, name_id).grace_since
        assert name_since > since
        while _contract(chain, name_id).state != "deleted":
            chain.step(HOUR)
            assert chain.now <= name_since + 14 * DAY + 2 * HOUR
        assert _contract(chain, name_id).deleted_reason == "out_of_funds"
        assert chain.ledger.state.contract_by_name.get("dry-name") is None
        # A deleted contract is billed no more.
        bills = _billing(chain, contract_id).bills
        chain.step(3 * HOUR)
        assert _billing(chain, contract_id).bills == bills
        assert chain.ledger.state.total_balances() == chain.supply().total
        chain.seal()
    finally:
        chain.close()
    verify_chain(data)


def test_cancelling_bills_the_last_seconds_and_a_debt_it_cannot_pay_stays_unpaid(
    memory_dir: Path,
) -> None:
    data = memory_dir / "chain"
    init_dev_chain(data)
    chain = ClockedChain(data, START)
    try:
        deployer, _, _, contract_id = _setup(chain, 100)
        chain.step(HOUR)
        chain.step(1200)
        balance = chain.free(deployer.address)
        chain.submit(deployer, "contracts.cancel", {"contract_id": contract_id})
        billing = _billing(chain, contract_id)
        last = chain.bill(contract_id, billing.bills)
        assert (last.period_start, last.period_end) == (START + HOUR, START + HOUR + 1200)
        assert last.status == "paid"
        fee = chain.ledger.genesis.transaction_fee
        assert chain.free(deployer.address) == balance - last.amount - fee
        # Nothing more is due for it.
        chain.step(2 * HOUR)
        assert _billing(chain, contract_id).bills == billing.bills

        poor, _, _, second = _setup(chain, 1, "farm-h")
        while _contract(chain, second).state == "created":
            chain.step(HOUR)
        chain.step(HOUR)
        chain.submit(poor, "contracts.cancel", {"contract_id": second})
        ended = _contract(chain, second)
        ended_billing = _billing(chain, second)
        assert (ended.state, ended_billing.owed) == ("deleted", 0)
        statuses = {
            b.status
            for n in range(ended_billing.first_owed_bill, ended_billing.bills + 1)
            if (b := chain.ledger.state.bills.get(f"{second}:{n}")) is not None
        }
        assert statuses == {"unpaid"}
        twin = chain.ledger.state.twin_of_account(poor.address)
        assert twin is not None and (twin.grace, twin.spend) == ([], 0)
        assert chain.ledger.state.total_balances() == chain.supply().total
        chain.seal()
    finally:
        chain.close()
    verify_chain(data)
