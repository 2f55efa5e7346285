"""A ledger with two days of a small grid's life, for the explorer's tests.

Farms in three countries with public IPs, nodes of every status (up, down, standby,
removed), gateways, node, name and rent contracts, updates, results and resources
reported, hourly bills, a grace period entered and left, cancels. Built in-process with a
test clock that ends at the wall clock, so a ledger process serving the directory
afterwards carries on from where the story ends.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chain.clocked import ClockedChain
from zgrid.chain import UNITS_PER_TOKEN, init_dev_chain, issue_join_token
from zgrid.chain.genesis import load_validator_key
from zgrid.identity import Identity

GIB = 1024**3
STEP = 600  # seconds of ledger time per block
REPORT_EVERY = 2  # blocks between two uptime reports of a node (1200 s, the least allowed)

NODES: dict[str, dict[str, Any]] = {
    "ghent": {
        "farm": "alpha",
        "resources": {"cru": 8, "mru": 32 * GIB, "sru": 500 * GIB, "hru": 2000 * GIB},
        "location": {
            "country": "Belgium",
            "city": "Ghent",
            "latitude": "51.05",
            "longitude": "3.71",
        },
        "public_config": {
            "ipv4": "203.0.113.50/24",
            "gw4": "203.0.113.1",
            "ipv6": "2001:db8::50/64",
            "gw6": "2001:db8::1",
            "domain": "gw1.example.org",
        },
    },
    "brussels": {
        "farm": "alpha",
        "resources": {"cru": 4, "mru": 16 * GIB, "sru": 200 * GIB, "hru": 0},
        "location": {"country": "Belgium", "city": "Brussels"},
    },
    "cairo": {
        "farm": "beta",
        "resources": {"cru": 2, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 1000 * GIB},
        "location": {"country": "Egypt", "city": "Cairo"},
    },
    "giza": {  # stops reporting halfway: down
        "farm": "beta",
        "resources": {"cru": 4, "mru": 8 * GIB, "sru": 60 * GIB, "hru": 0},
        "location": {"country": "Egypt", "city": "Giza"},
    },
    "newyork": {
        "farm": "gamma",
        "resources": {"cru": 16, "mru": 64 * GIB, "sru": 1000 * GIB, "hru": 4000 * GIB},
        "location": {"country": "United States", "city": "New York"},
        "public_config": {"ipv6": "2001:db8:1::7/64", "gw6": "2001:db8:1::1"},
    },
    "boston": {  # goes to standby near the end
        "farm": "gamma",
        "resources": {"cru": 4, "mru": 16 * GIB, "sru": 250 * GIB, "hru": 0},
        "location": {"country": "United States", "city": "Boston"},
    },
    "spare": {  # removed by its farmer halfway, with a contract on it
        "farm": "alpha",
        "resources": {"cru": 2, "mru": 4 * GIB, "sru": 40 * GIB, "hru": 0},
        "location": {"country": "Belgium", "city": "Antwerp"},
    },
}
FARMS = {
    "alpha": ["203.0.113.10", "203.0.113.11", "203.0.113.12"],
    "beta": ["198.51.100.20"],
    "gamma": [],
}


@dataclass
class Story:
    data: Path
    blocks: int
    node_ids: dict[str, int] = field(default_factory=dict)
    farm_ids: dict[str, int] = field(default_factory=dict)
    twin_ids: dict[str, int] = field(default_factory=dict)
    contract_ids: dict[str, int] = field(default_factory=dict)
    end: int = 0
    height: int = 0


def _sealed(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _hash(label: str) -> str:
    return (label.encode().hex() * 64)[:64]


class _Teller:
    def __init__(self, chain: ClockedChain, story: Story) -> None:
        self.chain = chain
        self.story = story
        self.nodes: dict[str, Identity] = {}
        self.boot: dict[str, int] = {}
        self.reporting: set[str] = set()

    def submit(self, who: Identity, call: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.chain.submit(who, call, args)

    def register(self, farmers: dict[str, Identity], name: str) -> None:
        spec = NODES[name]
        node, _ = self.chain.twin(10)
        farm_id = self.story.farm_ids[spec["farm"]]
        token = issue_join_token(
            farmers[spec["farm"]],
            chain_id=self.chain.ledger.chain_id,
            farm_id=farm_id,
            expires=self.chain.now + 3600,
        )
        args: dict[str, Any] = {
            "farm_id": farm_id,
            "resources": spec["resources"],
            "location": spec["location"],
            "join_token": token.encode(),
            "serial": f"SN-{name}",
        }
        if "public_config" in spec:
            args["public_config"] = spec["public_config"]
        result = self.submit(node, "nodes.register", args)
        self.nodes[name] = node
        self.story.node_ids[name] = int(result["node_id"])
        self.boot[name] = self.chain.now - 100
        self.reporting.add(name)

    def report(self, block: int) -> None:
        if block % REPORT_EVERY:
            return
        for name in sorted(self.reporting):
            now = self.chain.now
            self.submit(
                self.nodes[name],
                "nodes.report_uptime",
                {
                    "uptime": now - self.boot[name],
                    "timestamp": now,
                    "node_id": self.story.node_ids[name],
                },
            )

    def contract(
        self,
        who: Identity,
        label: str,
        node: str,
        capacity: dict[str, int],
        *,
        public_ips: int = 0,
        result: bool = True,
    ) -> int:
        created = self.submit(
            who,
            "contracts.create_node_contract",
            {
                "node_id": self.story.node_ids[node],
                "deployment_hash": _hash(label),
                "sealed_deployment": _sealed(label),
                "capacity": capacity,
                "public_ips": public_ips,
            },
        )
        contract_id = int(created["contract_id"])
        self.story.contract_ids[label] = contract_id
        if result:
            self.result(node, contract_id, 0)
        return contract_id

    def result(self, node: str, contract_id: int, version: int) -> None:
        self.submit(
            self.nodes[node],
            "contracts.report_result",
            {"contract_id": contract_id, "version": version, "sealed_results": _sealed("ok")},
        )


def write_story(data: Path, *, blocks: int = 300) -> Story:
    """Write the story's ledger into ``data`` (a new directory); its last block's time is now."""
    start = (int(time.time()) - blocks * STEP) // 60 * 60
    init_dev_chain(data)
    genesis_file = data / "genesis.json"
    document = json.loads(genesis_file.read_text())
    document["genesis_time"] = start - 60
    genesis_file.write_text(json.dumps(document, indent=2) + "\n")
    story = Story(data=data, blocks=blocks)
    chain = ClockedChain(data, start)
    try:
        _tell(chain, story)
        chain.seal()
        story.end = chain.ledger.head.header.timestamp
        story.height = chain.ledger.head.header.height
    finally:
        chain.close()
    return story


def _tell(chain: ClockedChain, story: Story) -> None:
    teller = _Teller(chain, story)
    validator = load_validator_key(story.data)
    chain.submit(validator, "accounts.faucet", {"amount": UNITS_PER_TOKEN})
    farmers: dict[str, Identity] = {}
    for name, addresses in FARMS.items():
        farmer, twin_id = chain.twin(100)
        farmers[name] = farmer
        story.twin_ids[f"farmer-{name}"] = twin_id
        story.farm_ids[name] = chain.farm(farmer, name, addresses)
    chain.submit(
        validator,
        "farms.set_certification",
        {"farm_id": story.farm_ids["gamma"], "certification": "gold"},
    )
    for name in NODES:
        teller.register(farmers, name)
    rich, story.twin_ids["rich"] = chain.twin(5000)
    poor, story.twin_ids["poor"] = chain.twin(1)
    renter, story.twin_ids["renter"] = chain.twin(5000)
    chain.step(STEP)
    teller.report(0)
    small = {"cru": 1, "mru": 2 * GIB, "sru": 20 * GIB, "hru": 0}
    teller.contract(rich, "web", "ghent", {**small, "cru": 2, "mru": 4 * GIB}, public_ips=1)
    teller.contract(rich, "db", "cairo", {**small, "hru": 200 * GIB})
    teller.contract(rich, "doomed", "spare", small)
    teller.contract(rich, "waiting", "cairo", small, result=False)  # never reported
    teller.contract(poor, "broke", "newyork", {**small, "cru": 8, "mru": 32 * GIB})
    teller.contract(poor, "brief", "boston", small)
    chain.submit(rich, "contracts.create_name_contract", {"name": "hello"})
    rent = chain.submit(
        renter, "contracts.create_rent_contract", {"node_id": story.node_ids["brussels"]}
    )
    story.contract_ids["rent"] = int(rent["contract_id"])
    teller.contract(renter, "rented-app", "brussels", small)
    for block in range(1, story.blocks):
        chain.step(STEP)
        teller.report(block)
        _events(chain, teller, block, twins={"rich": rich, "poor": poor, **farmers})


def _events(
    chain: ClockedChain, teller: _Teller, block: int, *, twins: dict[str, Identity]
) -> None:
    story, ids = teller.story, teller.story.contract_ids
    rich, poor = twins["rich"], twins["poor"]
    if block == 10:
        teller.submit(
            teller.nodes["ghent"],
            "contracts.report_resources",
            {
                "contract_id": ids["web"],
                "used": {"cru": 2, "mru": 3 * GIB, "sru": 10 * GIB, "hru": 0},
            },
        )
    if block == 20:
        teller.submit(
            rich,
            "contracts.update_node_contract",
            {
                "contract_id": ids["db"],
                "deployment_hash": _hash("db-v1"),
                "sealed_deployment": _sealed("db-v1"),
                "capacity": {"cru": 1, "mru": 4 * GIB, "sru": 40 * GIB, "hru": 400 * GIB},
            },
        )
        teller.result("cairo", ids["db"], 1)
    if block == 30:
        teller.submit(poor, "contracts.cancel", {"contract_id": ids["brief"]})
    if block == story.blocks // 2:
        teller.reporting.discard("giza")
        teller.submit(
            twins["alpha"],
            "farms.remove_node",
            {"farm_id": story.farm_ids["alpha"], "node_id": story.node_ids["spare"]},
        )
        teller.reporting.discard("spare")
    if block == story.blocks // 2 + 10:  # the poor twin, long in grace, pays its debt
        chain.submit(poor, "accounts.faucet", {"amount": 1000 * UNITS_PER_TOKEN})
    if block == story.blocks - 5:
        teller.submit(teller.nodes["boston"], "nodes.set_power", {"power": "standby"})
        teller.reporting.discard("boston")
