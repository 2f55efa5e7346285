"""`zgrid nodes`: the nodes of the current network's ledger, as a table or JSON, filtered."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.factories import join_token
from tests.processes import run_zgrid
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.cli import main
from zgrid.cli.nodes import parse_min_free, size_text
from zgrid.client import NetworkConfig, Store
from zgrid.identity import Identity
from zgrid.types import GIB


def _client(url: str) -> SyncChainClient:
    client = SyncChainClient(url, identity=Identity(secrets.token_bytes(32)))
    client.faucet(5 * UNITS_PER_TOKEN)
    client.create_twin()
    return client


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LedgerProcess, list[int]]]:
    """A ledger with a farm (one public IP) of two nodes: 1 up in Ghent, 2 down, nowhere."""
    with running_ledger(tmp_path_factory.mktemp("nodes-cli")) as ledger:
        farmer = _client(ledger.url)
        farm_id = farmer.create_farm("nodes-farm")
        farmer.add_farm_ip(farm_id, "203.0.113.5/24", "203.0.113.1")
        node_ids = []
        for size, location in ((100, {"country": "BE", "city": "Ghent"}), (50, {})):
            node = _client(ledger.url)
            node_ids.append(
                node.register_node(
                    farm_id,
                    {"cru": 4, "mru": 8 * GIB, "sru": size * GIB, "hru": 0},
                    location=location,
                    join_token=join_token(farmer, farm_id),
                )
            )
            if location:
                node.report_uptime(1, node.head()["timestamp"])
            node.close()
        farmer.close()
        yield ledger, node_ids


@pytest.fixture
def home(tmp_path: Path, grid: tuple[LedgerProcess, list[int]]) -> Path:
    """A home whose current network is the grid's (no $ZGRID_LEDGER needed)."""
    Store(tmp_path / "home").add_network(NetworkConfig(name="devnet", ledger=grid[0].url))
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def _no_ledger_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZGRID_LEDGER", raising=False)


def listed(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Any:
    code = main(["--home", str(home), "nodes", "--json", *args])
    shown = capsys.readouterr()
    assert code == 0, shown.err
    return json.loads(shown.out)


def test_the_json_lists_every_node_of_the_current_network(
    capsys: pytest.CaptureFixture[str], home: Path, grid: tuple[LedgerProcess, list[int]]
) -> None:
    first, second = grid[1]
    nodes = listed(capsys, home)
    assert [node["node_id"] for node in nodes] == [first, second]
    assert {key: value for key, value in nodes[0].items() if key != "twin_id"} == {
        "node_id": first,
        "farm_id": 1,
        "farm_name": "nodes-farm",
        "status": "up",
        "country": "BE",
        "city": "Ghent",
        "certified": False,
        "total": {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0},
        "free": {"cru": 4, "mru": 8 * GIB, "sru": 100 * GIB, "hru": 0},
        "public_ips": 1,
        "public_ips_free": 1,
        "rented_by": 0,
        "pricing_policy_id": 1,
    }
    assert (nodes[1]["status"], nodes[1]["country"], nodes[1]["city"]) == ("down", "", "")


def test_filters_keep_what_the_planner_would(
    capsys: pytest.CaptureFixture[str], home: Path, grid: tuple[LedgerProcess, list[int]]
) -> None:
    first, second = grid[1]

    def ids(*args: str) -> list[int]:
        return [node["node_id"] for node in listed(capsys, home, *args)]

    assert ids("--up") == [first]
    assert ids("--country", "be") == [first]
    assert ids("--farm", "NODES-FARM") == ids("--farm", "1") == [first, second]
    assert ids("--farm", "7") == ids("--farm", "elsewhere") == ids("--certified") == []
    assert ids("--min-free", "sru=60GiB") == [first]
    assert ids("--min-free", "cru=4, mru=8GiB ,ipv4=1") == [first, second]
    assert ids("--min-free", "mru=9GiB") == []


def test_the_table_through_the_console_script(
    home: Path, grid: tuple[LedgerProcess, list[int]]
) -> None:
    done = run_zgrid("nodes", home=home)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "node", "farm", "location", "status", "cru", "free/total", "mru", "free/total",
        "sru", "free/total", "hru", "free/total", "certified", "ipv4", "free",
    ]  # fmt: skip
    first, second = grid[1]
    assert lines[1].split() == [
        str(first), "1", "nodes-farm", "Ghent,", "BE", "up", "4", "/", "4",
        "8", "GiB", "/", "8", "GiB", "100", "GiB", "/", "100", "GiB",
        "0", "B", "/", "0", "B", "no", "1", "/", "1",
    ]  # fmt: skip
    assert lines[2].split()[:5] == [str(second), "1", "nodes-farm", "-", "down"]
    assert lines[-1] == f"2 node(s) on the ledger at {grid[0].url}"


def test_no_node_left_by_the_filters_is_said(
    capsys: pytest.CaptureFixture[str], home: Path, grid: tuple[LedgerProcess, list[int]]
) -> None:
    assert main(["--home", str(home), "nodes", "--farm", "elsewhere"]) == 0
    shown = capsys.readouterr().out.strip()
    assert shown == f"no nodes matching these filters on the ledger at {grid[0].url}"


def test_an_unreachable_ledger_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--home", str(tmp_path), "nodes", "--ledger", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: cannot reach the ledger at http://127.0.0.1:9"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min-free", "cru"), "'cru' is not key=value"),
        (("--min-free", "gpu=1"), "unknown resource 'gpu'"),
        (("--min-free", "cru=1,cru=2"), "cru is given twice"),
        (("--min-free", "cru=one"), "cru must be a whole number, got 'one'"),
        (("--min-free", "mru=lots"), "mru is not a size: 'lots'"),
        (("--min-free", ","), "give at least one of"),
        (("--ledger", "ledger.example"), "expected http://HOST:PORT"),
        (("--up=yes",), "--up"),
    ],
)
def test_bad_flag_values_are_wrong_usage(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("ZGRID_LEDGER", "http://127.0.0.1:9")  # never a ledger that answers
    assert main(["--home", str(tmp_path), "nodes", *args]) == 2
    assert message in capsys.readouterr().err


def test_min_free_reads_sizes() -> None:
    assert parse_min_free("cru=2,mru=1GiB,sru=512MiB,hru=0,ipv4=1") == {
        "cru": 2,
        "mru": GIB,
        "sru": 512 * 2**20,
        "hru": 0,
        "ipv4": 1,
    }


def test_sizes_are_shown_in_human_units() -> None:
    assert size_text(0) == "0 B"
    assert size_text(1000) == "1000 B"
    assert size_text(8 * GIB) == "8 GiB"
    assert size_text(3 * GIB // 2) == "1536 MiB"
    assert size_text(3 * GIB + 7) == "3.0 GiB"
    assert size_text(5000) == "4.9 KiB"
