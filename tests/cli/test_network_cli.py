"""`zgrid network add|use|ls|rm`: no key needed, exit codes. The console script without a
key runs the first test; the others run in-process (``zgrid.cli.main``, the same command
without a Python start-up each)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.processes import ZGRID, zgrid_here


def zgrid(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return zgrid_here(*args, home=home)


def locked_zgrid(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Without any key: network commands must not need one."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ZGRID_KEY_FILE", "ZGRID_PASSPHRASE")
    }
    environ["ZGRID_HOME"] = str(home)
    return subprocess.run(
        [ZGRID, *args], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


def test_add_use_ls_rm(tmp_path: Path) -> None:
    empty = locked_zgrid(tmp_path, "network", "ls", "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout) == {"current": None, "networks": []}
    added = locked_zgrid(
        tmp_path, "network", "add", "devnet", "--ledger", "http://127.0.0.1:8700",
        "--hub", "http://127.0.0.1:8780",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added network devnet (current): ledger http://127.0.0.1:8700"
    added = locked_zgrid(
        tmp_path, "network", "add", "main", "--ledger", "https://ledger.example",
        "--explorer", "https://explorer.example", "--identity", "ops",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = locked_zgrid(tmp_path, "network", "ls")
    assert listed.stdout.splitlines() == [
        "* devnet  ledger http://127.0.0.1:8700 hub http://127.0.0.1:8780  identity default",
        "  main  ledger https://ledger.example explorer https://explorer.example  identity ops",
    ]
    assert locked_zgrid(tmp_path, "network", "use", "main").returncode == 0
    document = json.loads(locked_zgrid(tmp_path, "network", "ls", "--json").stdout)
    assert document["current"] == "main"
    assert document["networks"][1] == {
        "name": "main",
        "ledger": "https://ledger.example",
        "hub": None,
        "explorer": "https://explorer.example",
        "identity": "ops",
        "current": True,
    }
    removed = locked_zgrid(tmp_path, "network", "rm", "main")
    assert removed.returncode == 0 and removed.stdout.strip() == "removed network main"
    document = json.loads(locked_zgrid(tmp_path, "network", "ls", "--json").stdout)
    assert document["current"] is None
    assert [network["name"] for network in document["networks"]] == ["devnet"]
    assert not (tmp_path / "store.json").exists()


def test_add_with_use_and_force(tmp_path: Path) -> None:
    assert zgrid(tmp_path, "network", "add", "a", "--ledger", "http://h:1").returncode == 0
    again = zgrid(tmp_path, "network", "add", "a", "--ledger", "http://h:2")
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        == "error: network 'a' already exists; refusing to replace it (use --force)"
    )
    assert zgrid(tmp_path, "network", "add", "b", "--ledger", "http://h:3", "--use").returncode == 0
    assert (
        zgrid(tmp_path, "network", "add", "a", "--ledger", "http://h:2", "--force").returncode == 0
    )
    document = json.loads(zgrid(tmp_path, "network", "ls", "--json").stdout)
    assert document["current"] == "b"
    assert document["networks"][0]["ledger"] == "http://h:2"


def test_wrong_usage_exits_2_and_unknown_names_1(tmp_path: Path) -> None:
    for args in (
        ["add", "Bad_Name", "--ledger", "http://h"],
        ["add", "dev", "--ledger", "ftp://h"],
        ["add", "dev", "--ledger", "http://u:p@h"],
        ["add", "dev"],
        ["add", "dev", "--ledger", "http://h", "--identity", "No Way"],
    ):
        result = zgrid(tmp_path, "network", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "config.json").exists()
    for args in (["use", "ghost"], ["rm", "ghost"]):
        result = zgrid(tmp_path, "network", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("error: no network 'ghost'")


def test_a_network_names_who_signs(tmp_path: Path) -> None:
    """Commands sign as the current network's identity."""
    ops = json.loads(zgrid(tmp_path, "identity", "new", "--name", "ops", "--json").stdout)
    zgrid(tmp_path, "identity", "new")
    zgrid(tmp_path, "network", "add", "dev", "--ledger", "http://h", "--identity", "ops")
    shown = json.loads(zgrid(tmp_path, "identity", "show", "--json").stdout)
    assert shown == {**ops, "name": "ops"}
    zgrid(tmp_path, "network", "add", "other", "--ledger", "http://h", "--identity", "nobody")
    zgrid(tmp_path, "network", "use", "other")
    missing = zgrid(tmp_path, "identity", "show")
    assert missing.returncode == 1 and "named 'nobody'" in missing.stderr
