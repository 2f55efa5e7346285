"""`zgrid chain|account|twin|farm` against a real ledger: through the console script, and
in-process (``zgrid.cli.main``, the same code without a Python start-up each) for the
session's steps that are about what a command does, not about the script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.chain.conftest import LedgerProcess
from tests.processes import free_port, run_zgrid, zgrid_here


def run(*args: str, home: Path, ledger: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_zgrid(*args, home=home, ledger=ledger)


def here(*args: str, home: Path, ledger: str | None = None) -> subprocess.CompletedProcess[str]:
    return zgrid_here(*args, home=home, ledger=ledger)


def test_a_farmer_session(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "chain"
    created = run("chain", "init", "--dev", "--data", str(data), "--json", home=home)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["chain_id"] == "zgrid-dev"
    assert here("identity", "new", home=home).returncode == 0

    ledger = LedgerProcess(data)
    ledger.start()
    try:
        url = ledger.url
        balance = json.loads(here("account", "balance", "--json", home=home, ledger=url).stdout)
        assert balance["free"] == 0
        assert here("account", "faucet", "250.5", home=home, ledger=url).returncode == 0
        balance = json.loads(here("account", "balance", "--json", home=home, ledger=url).stdout)
        assert balance["free"] == 250.5
        assert balance["free_units"] == 2_505_000_000

        assert json.loads(run("twin", "create", "--json", home=home, ledger=url).stdout) == {
            "twin_id": 1
        }
        assert (
            json.loads(here("twin", "show", "--json", home=home, ledger=url).stdout)["account"]
            == balance["address"]
        )
        assert (
            json.loads(here("farm", "create", "my-farm", "--json", home=home, ledger=url).stdout)[
                "farm_id"
            ]
            == 1
        )
        assert (
            here(
                "farm", "add-ip", "1", "203.0.113.7/24", "203.0.113.1", home=home, ledger=url
            ).returncode
            == 0
        )
        farm = json.loads(here("farm", "show", "1", "--json", home=home, ledger=url).stdout)
        assert farm["public_ips"] == [
            {"ip": "203.0.113.7/24", "gateway": "203.0.113.1", "contract_id": 0}
        ]

        duplicate = run(
            "farm", "add-ip", "1", "203.0.113.7/24", "203.0.113.1", home=home, ledger=url
        )
        assert duplicate.returncode == 1
        assert duplicate.stderr.strip() == "error: conflict: farm 1 already has 203.0.113.7"

        too_much = here("account", "transfer", "ab" * 32, "1000", home=home, ledger=url)
        assert too_much.returncode == 1
        assert "free balance 250.497 is less than the 1000.001 tokens needed" in too_much.stderr

        status = json.loads(here("chain", "status", "--json", home=home, ledger=url).stdout)
        assert status["height"] >= 4
    finally:
        assert ledger.stop() == 0
    verified = run("chain", "verify", "--data", str(data), "--json", home=home)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["transactions"] == 4


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("chain", "init", "--data", "X"), 2, "--dev"),
        (("chain", "run", "--data", "X", "--listen", "nowhere"), 2, "HOST:PORT"),
        (("chain", "run", "--data", "X", "--listen", "127.0.0.1:1"), 1, "no genesis.json"),
        (("account", "balance", "abc"), 1, "64 hex characters"),
        (("account", "transfer", "ab" * 32, "1.000000001"), 2, "at most 7 decimals"),
        (("account", "faucet", "0"), 2, "more than 0"),
        (("chain", "verify", "--data", "X"), 1, "no genesis.json"),
    ],
)
def test_bad_invocations(tmp_path: Path, args: tuple[str, ...], code: int, fragment: str) -> None:
    args = tuple(str(tmp_path / "missing") if a == "X" else a for a in args)
    home = tmp_path / "home"
    here("identity", "new", home=home)
    result = run(*args, home=home)
    assert result.returncode == code, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_ledger_is_one_line(tmp_path: Path) -> None:
    result = run("chain", "status", home=tmp_path, ledger=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the ledger at http://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
