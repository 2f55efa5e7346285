"""`zgrid contract ls|show|bills`, `zgrid account discount`, `zgrid farm rewards` and
`zgrid chain advance` against a real ledger whose time the tests move ahead, so contracts
have bills and a farming period ends; each command's --json is checked against the API's
own records and its table against the fields it must name."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.factories import join_token
from tests.processes import zgrid_here
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient, discount_percent
from zgrid.client import Store, Unlocker
from zgrid.identity import Identity, new_mnemonic, seal
from zgrid.types import GIB, Deployment, ZMount, make_workload, parse_deployment, sign_deployment


@dataclass
class World:
    """A ledger with a farm, one node and a deployer (a CLI home) holding one node contract."""

    ledger: LedgerProcess
    home: Path
    deployer: SyncChainClient
    deployer_twin: int
    farm_id: int
    node_id: int
    contract_id: int


def _wait(what: str, check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


def _deployment(twin_id: int) -> Deployment:
    disk = make_workload("disk", ZMount(size=10 * GIB), version=0)
    return parse_deployment(
        {
            "version": 0,
            "twin_id": twin_id,
            "signature_requirement": {"requests": [{"twin_id": twin_id, "required": True}]},
            "workloads": [disk.to_json_dict()],
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("contract-cli")
    with running_ledger(directory) as ledger:
        farmer = SyncChainClient(ledger.url, identity=Identity(os.urandom(32)))
        node = SyncChainClient(ledger.url, identity=Identity(os.urandom(32)))
        home = directory / "deployer"
        identity = Store(home, unlocker=Unlocker.from_env(os.environ)).add_identity(new_mnemonic())
        deployer = SyncChainClient(ledger.url, identity=identity)
        try:
            farmer.faucet(10 * UNITS_PER_TOKEN)
            farmer.create_twin()
            farm_id = farmer.create_farm("billing-farm")
            farmer.add_farm_ip(farm_id, "203.0.113.10/24", "203.0.113.1")
            node.faucet(UNITS_PER_TOKEN)
            node.create_twin()
            resources = {"cru": 8, "mru": 32 * GIB, "sru": 512 * GIB, "hru": 2048 * GIB}
            node_id = node.register_node(farm_id, resources, join_token=join_token(farmer, farm_id))
            node.report_uptime(60, node.head()["timestamp"])
            deployer.faucet(1000 * UNITS_PER_TOKEN)
            twin_id = deployer.create_twin()
            signed = sign_deployment(_deployment(twin_id), twin_id, identity)
            assert node.identity is not None
            sealed = base64.b64encode(seal(node.identity.public_key, signed.to_json_bytes()))
            created = deployer.create_node_contract(
                node_id,
                signed.hash_hex(),
                sealed.decode(),
                public_ips=1,
                capacity={"cru": 1, "mru": 2 * GIB, "sru": 10 * GIB},
            )
            contract_id = int(created["result"]["contract_id"])
            used = {"cru": 1, "mru": 2 * GIB, "sru": 10 * GIB, "hru": 0}
            node.report_resources(contract_id, used)
            yield World(ledger, home, deployer, twin_id, farm_id, node_id, contract_id)
        finally:
            for client in (farmer, node, deployer):
                client.close()


def zgrid(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return zgrid_here(*args, home=world.home, ledger=world.ledger.url)


def _advance(world: World, duration: str, until: Callable[[], bool], what: str) -> None:
    moved = zgrid(world, "chain", "advance", duration, "--json")
    assert moved.returncode == 0, moved.stderr
    _wait(what, until)


def test_bills_after_ledger_time_moves(world: World) -> None:
    reader = world.deployer
    before = reader.head()["timestamp"]
    moved = zgrid(world, "chain", "advance", "2h", "--json")
    assert moved.returncode == 0, moved.stderr
    answer = json.loads(moved.stdout)
    assert answer["seconds"] == 7200
    assert answer["from_block"] == answer["height"] + 1
    _wait("the first bill", lambda: reader.contract(world.contract_id)["bills"] >= 1)
    _wait("a block two hours later", lambda: reader.head()["timestamp"] >= before + 7200)
    plain = zgrid(world, "chain", "advance", "36h")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("ledger time moves 129600 s ahead from block ")
    _wait("the second bill", lambda: reader.contract(world.contract_id)["bills"] >= 2)

    record = reader.contract(world.contract_id)
    price = reader.economy()["token_price"]
    assert record["hourly"] > 0

    shown = zgrid(world, "contract", "show", str(world.contract_id), "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document == {
        "id": world.contract_id,
        "type": "node",
        "state": "created",
        "deleted_reason": "",
        "twin_id": world.deployer_twin,
        "node_id": world.node_id,
        "name": "",
        "public_ips": 1,
        "hourly_usd_units": record["hourly"],
        "hourly_token_units": record["hourly"] * UNITS_PER_TOKEN // price,
        "token_price": price,
        "billed_until": record["billed_until"],
        "next_bill": record["next_bill"],
        "owed": 0,
        "grace_since": 0,
        "bills": record["bills"],
    }

    listed = zgrid(world, "contract", "ls", "--json")  # the store identity's twin
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [document]
    for flags in (("--state", "deleted"), ("--type", "rent"), ("--twin", "1")):
        assert json.loads(zgrid(world, "contract", "ls", *flags, "--json").stdout) == []
    created = zgrid(world, "contract", "ls", "--state", "created", "--type", "node")
    assert created.returncode == 0, created.stderr
    header = created.stdout.splitlines()[0].split()
    assert header == [
        "contract",
        "type",
        "state",
        "where",
        "USD/hour",
        "tokens/hour",
        "bills",
        "owed",
    ]
    assert f"node {world.node_id}" in created.stdout
    assert f"1 contract(s) of twin {world.deployer_twin}" in created.stdout

    table = zgrid(world, "contract", "show", str(world.contract_id))
    assert table.returncode == 0, table.stderr
    for label in ("state:", "type:", "where:", "twin:", "price:", "billed until:", "next bill:"):
        assert label in table.stdout
    for label in ("owed:", "grace since:", f"bills:        {record['bills']}"):
        assert label in table.stdout
    usd = f"{record['hourly'] / 10_000_000:.7f}".rstrip("0")
    assert f"{usd} USD/hour" in table.stdout

    api = reader.bills(world.contract_id)
    assert api["total"] == record["bills"] == len(api["items"])
    bills = zgrid(world, "contract", "bills", str(world.contract_id), "--json")
    assert bills.returncode == 0, bills.stderr
    assert json.loads(bills.stdout) == api
    first, second = api["items"]
    assert (first["number"], second["number"]) == (1, 2)
    assert second["period_start"] == first["period_end"]
    for bill in api["items"]:
        assert bill["status"] == "paid"
        assert sum(bill["split"].values()) == bill["amount"] > 0
    paged = json.loads(
        zgrid(
            world,
            "contract",
            "bills",
            str(world.contract_id),
            "--page",
            "2",
            "--size",
            "1",
            "--json",
        ).stdout
    )
    assert paged["items"] == [second]

    rows = zgrid(world, "contract", "bills", str(world.contract_id))
    assert rows.returncode == 0, rows.stderr
    lines = rows.stdout.splitlines()
    assert lines[0].split() == [
        "bill", "period", "(UTC)", "USD", "tokens", "discount", "amount", "status",
        "burned", "farmer", "validators", "foundation",
    ]  # fmt: skip
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second["period_start"]))
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second["period_end"]))
    row = lines[2].split()
    amount = f"{second['amount'] / UNITS_PER_TOKEN:.7f}".rstrip("0").rstrip(".")
    assert row[0] == "2"
    assert " ".join(row[1:6]) == f"{start} - {end}"
    assert row[8:11] == [f"{second['discount']}%", amount, "paid"]
    assert lines[-1] == f"bills 1-2 of 2 of contract {world.contract_id} (amounts in tokens)"


def test_the_discount_and_the_balance_of_the_next_tier(world: World) -> None:
    shown = zgrid(world, "account", "discount", "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    view = world.deployer.discount(world.deployer_twin)
    price = world.deployer.economy()["token_price"]
    assert {key: document[key] for key in view} == view
    spend = view["spend_usd_per_hour"] * UNITS_PER_TOKEN // price
    assert spend > 0
    assert document["spend_token_units_per_hour"] == spend
    assert document["balance"] == world.deployer.account(world.deployer.identity.address)["free"]  # type: ignore[union-attr]
    tier = view["next_tier"]
    assert tier is not None
    needed = document["next_tier_balance"]
    # That balance is the least that earns the tier at this spend.
    exact = Fraction(view["spend_usd_per_hour"] * UNITS_PER_TOKEN, price)
    assert discount_percent(needed, exact) == tier["percent"]
    assert discount_percent(needed - 1, exact) < tier["percent"]

    plain = zgrid(world, "account", "discount", "--twin", str(world.deployer_twin))
    assert plain.returncode == 0, plain.stderr
    for label in ("balance:", "spend:", "months covered:", "discount:", "next tier:"):
        assert label in plain.stdout
    assert f"{document['percent']}%" in plain.stdout
    tokens = f"{needed / UNITS_PER_TOKEN:.7f}".rstrip("0").rstrip(".")
    assert (
        f"{tier['percent']}% at {tier['months']} months of spending: a balance of {tokens} tokens"
        in plain.stdout
    )


def test_unknown_ids_and_bad_durations(world: World) -> None:
    for command in (("contract", "show", "999"), ("contract", "bills", "999")):
        result = zgrid(world, *command)
        assert (result.returncode, result.stderr.strip()) == (1, "error: no contract 999")
    for group in ("account discount", "contract ls"):
        missing = zgrid(world, *group.split(), "--twin", "999")
        assert (missing.returncode, missing.stderr.strip()) == (1, "error: no twin 999")
    farm = zgrid(world, "farm", "rewards", "999")
    assert (farm.returncode, farm.stderr.strip()) == (1, "error: no farm 999")
    for duration, message in (
        ("soon", "'soon' is not a duration"),
        ("0s", "must be more than 0 and at most 366d"),
        ("367d", "must be more than 0 and at most 366d"),
        ("5 hours", "'5 hours' is not a duration"),
    ):
        result = zgrid(world, "chain", "advance", duration)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
    usage = zgrid(world, "contract", "ls", "--state", "asleep")
    assert usage.returncode == 2
    assert "'asleep' is not one of" in usage.stderr


def test_a_twinless_identity_is_told_to_make_a_twin(world: World, tmp_path: Path) -> None:
    home = tmp_path / "nobody"
    address = (
        Store(home, unlocker=Unlocker.from_env(os.environ)).add_identity(new_mnemonic()).address
    )
    for command in (("contract", "ls"), ("account", "discount")):
        result = zgrid_here(*command, home=home, ledger=world.ledger.url)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: account {address} has no twin yet (create one with `zgrid twin create`)"
        )


def test_farming_rewards_when_a_period_ends(world: World) -> None:
    nothing = zgrid(world, "farm", "rewards", str(world.farm_id))
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == f"no farming period of farm {world.farm_id} has ended yet"

    def ended() -> bool:
        return int(world.deployer.farm_rewards(world.farm_id)["total"]) >= 1

    _advance(world, "31d", ended, "the end of the node's first farming period")
    api = world.deployer.farm_rewards(world.farm_id, world.node_id)["items"]
    shown = zgrid(
        world, "farm", "rewards", str(world.farm_id), "--node", str(world.node_id), "--json"
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == api
    (reward,) = api
    assert reward["period"] == 1 and reward["tokens"] == 0  # a minute of uptime in 30 days
    assert reward["reason"].startswith("uptime 0% is under the 95%")

    table = zgrid(world, "farm", "rewards", str(world.farm_id))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "node", "period", "from", "-", "to", "(UTC)", "uptime", "CU", "SU", "traffic", "tokens",
        "withheld", "because",
    ]  # fmt: skip
    row = lines[1].split()
    assert row[:2] == [str(world.node_id), "1"]
    assert row[7:13] == ["0%", reward["cu"], reward["su"], "0", "B", "0"]  # traffic 0 B
    assert "uptime 0% is under the 95% the policy asks" in table.stdout
    assert lines[-1] == f"1 farming period(s) of farm {world.farm_id}: 0 tokens minted"
    other = zgrid(world, "farm", "rewards", str(world.farm_id), "--node", "999", "--json")
    assert json.loads(other.stdout) == []
