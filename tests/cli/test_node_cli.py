"""`zgrid node`: its key, its state and the errors a farmer can make before it starts."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from tests.processes import run_zgrid


def test_the_node_address_is_made_once_and_kept_private(tmp_path: Path) -> None:
    data = tmp_path / "node"
    first = run_zgrid("node", "address", "--data", str(data))
    assert first.returncode == 0, first.stderr
    address = first.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", address)
    again = run_zgrid("node", "address", "--data", str(data), "--json")
    assert json.loads(again.stdout)["address"] == address
    key = data / "identity" / "identity.json"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_status_of_a_directory_that_is_no_node(tmp_path: Path) -> None:
    done = run_zgrid("node", "status", "--data", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {tmp_path} holds no node state (no state.db); is it a node's --data?"
    )


def test_a_bad_capacity_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    base = ["node", "run", "--farm", "1", "--ledger", "http://127.0.0.1:9", "--data", str(tmp_path)]
    bad = run_zgrid(*base, "--capacity", "cru=2,mru=4GB,sru=1GiB")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: --capacity") and "'GB' is not a unit" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    huge = run_zgrid(*base, "--capacity", "cru=100000,mru=4GiB,sru=1GiB")
    assert huge.returncode == 1 and "more than this machine has" in huge.stderr
    usage = run_zgrid("node", "run", "--ledger", "http://127.0.0.1:9")
    assert usage.returncode == 2 and "--farm" in usage.stderr
