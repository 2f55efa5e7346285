"""`zgrid farm join-token|remove-node` and the ledger's refusals as a user reads them, against a real ledger."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.processes import zgrid_here
from zgrid.chain import UNITS_PER_TOKEN, JoinToken, SyncChainClient
from zgrid.client import Store, Unlocker
from zgrid.identity import Identity, new_mnemonic
from zgrid.types import GIB


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("farm-cli")) as process:
        yield process


def _store(home: Path) -> Store:
    return Store(home, unlocker=Unlocker.from_env(os.environ))  # the suite's key file


def identity_of(home: Path) -> Identity:
    return _store(home).identity()


def user(
    tmp_path: Path, ledger: LedgerProcess, name: str, *, tokens: int = 0, twin: bool = False
) -> Path:
    """A home with a new identity, given ``tokens`` by the faucet and a twin if asked.

    Set up through the library: the CLI runs only for what each test is about.
    """
    home = tmp_path / name
    identity = _store(home).add_identity(new_mnemonic())
    with SyncChainClient(ledger.url, identity=identity) as client:
        if tokens:
            client.faucet(tokens * UNITS_PER_TOKEN)
        if twin:
            client.create_twin()
    return home


def zgrid(home: Path, ledger: LedgerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """In-process (``zgrid.cli.main``: the same command, exit code and words, without a
    Python start-up each); tests/cli/test_chain_cli.py runs the console script on farms."""
    return zgrid_here(*args, home=home, ledger=ledger.url)


def test_a_farmer_lets_a_node_join_and_removes_it(tmp_path: Path, ledger: LedgerProcess) -> None:
    farmer = user(tmp_path, ledger, "farmer", tokens=5, twin=True)
    with SyncChainClient(ledger.url, identity=identity_of(farmer)) as client:
        farm_id = client.create_farm("cli-farm")
    node_identity = identity_of(user(tmp_path, ledger, "node", tokens=1, twin=True))

    issued = zgrid(
        farmer,
        ledger,
        "farm",
        "join-token",
        str(farm_id),
        "--node",
        node_identity.address,
        "--valid-for",
        "10m",
        "--json",
    )
    assert issued.returncode == 0, issued.stderr
    document = json.loads(issued.stdout)
    token = JoinToken.decode(document["token"])
    assert (token.farm_id, token.node, token.id) == (
        farm_id,
        node_identity.address,
        document["id"],
    )
    with SyncChainClient(ledger.url) as reader:
        now = reader.head()["timestamp"]
    assert now + 590 <= document["expires"] <= now + 600

    plain = zgrid(farmer, ledger, "farm", "join-token", str(farm_id))
    assert plain.returncode == 0, plain.stderr
    assert JoinToken.decode(plain.stdout).node == ""  # any node, one line on stdout

    # What the node daemon will do: register with the token as it was handed over.
    with SyncChainClient(ledger.url, identity=node_identity) as node:
        node_id = node.register_node(
            farm_id, {"cru": 2, "mru": 4 * GIB, "sru": 50 * GIB}, join_token=document["token"]
        )

    removed = zgrid(farmer, ledger, "farm", "remove-node", str(farm_id), str(node_id))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"removed node {node_id} from farm {farm_id}"
    with SyncChainClient(ledger.url) as reader:
        assert reader.query("nodes", farm_id=farm_id)["total"] == 0


def test_only_the_farmer_issues_join_tokens(tmp_path: Path, ledger: LedgerProcess) -> None:
    farmer = user(tmp_path, ledger, "farmer", tokens=5, twin=True)
    with SyncChainClient(ledger.url, identity=identity_of(farmer)) as client:
        farm = client.farm(client.create_farm("owned-farm"))
    stranger = user(tmp_path, ledger, "stranger")
    refused = zgrid(stranger, ledger, "farm", "join-token", str(farm["id"]))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: farm {farm['id']} belongs to twin {farm['twin_id']} and you have no twin; "
        "only a farm's farmer can let nodes join it"
    )
    bad = zgrid(farmer, ledger, "farm", "join-token", str(farm["id"]), "--valid-for", "soon")
    assert bad.returncode == 2
    assert "is not a duration" in bad.stderr


@pytest.mark.parametrize(
    ("tokens", "command", "expected"),
    [
        (
            0,
            ("twin", "create"),
            "error: insufficient_balance: a transaction costs a fee of 0.001 tokens and account "
            "{short}… has 0; get tokens with `zgrid account faucet` (dev chains) or "
            "`zgrid account transfer`",
        ),
        (
            5,
            ("farm", "create", "twinless"),
            "error: forbidden: account {short}… has no twin; create one with `zgrid twin create`",
        ),
        (
            0,
            ("account", "faucet", "5000"),
            "error: invalid_args: invalid args for accounts.faucet: amount: the faucet gives at "
            "most 1000 tokens per call",
        ),
        (
            1,
            ("account", "transfer", "ab" * 32, "2"),
            "error: insufficient_balance: free balance 1 is less than the 2.001 tokens needed "
            "(2 and the 0.001 token fee)",
        ),
    ],
)
def test_refusals_speak_in_tokens_and_commands(
    tmp_path: Path,
    ledger: LedgerProcess,
    tokens: int,
    command: tuple[str, ...],
    expected: str,
) -> None:
    home = user(tmp_path, ledger, "someone", tokens=tokens)
    short = identity_of(home).address[:16]
    result = zgrid(home, ledger, *command)
    assert result.returncode == 1
    assert result.stderr.strip() == expected.format(short=short)
