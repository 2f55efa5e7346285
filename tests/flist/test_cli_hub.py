"""Publishing through the `zgrid` command: push, ls and pull against a real hub and ledger.

Push, the pull of every block and the unpack run the console script; the other steps run
in-process (``zgrid.cli.main``: the same command and output, without a Python start-up)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.chain.conftest import LedgerProcess
from tests.flist.conftest import HubProcess
from tests.processes import run_zgrid, zgrid_here


def make_user(home: Path, ledger: str) -> int:
    for args in (("identity", "new"), ("account", "faucet", "100"), ("twin", "create", "--json")):
        result = zgrid_here(*args, home=home, ledger=ledger)
        assert result.returncode == 0, result.stderr
    twin_id: int = json.loads(result.stdout)["twin_id"]
    return twin_id


def test_push_ls_pull_through_the_cli(
    tmp_path: Path, hub: HubProcess, hub_ledger: LedgerProcess
) -> None:
    source = tmp_path / "src"
    (source / "etc").mkdir(parents=True)
    (source / "etc/motd").write_text("welcome\n")
    (source / "blob").write_bytes(os.urandom(1_200_000))
    flist = tmp_path / "app.fl"
    packed = zgrid_here("flist", "pack", str(source), "-o", str(flist), "-s", f"dir://{tmp_path}/s")
    assert packed.returncode == 0, packed.stderr

    publisher = make_user(tmp_path / "alice", hub_ledger.url)
    pushed = run_zgrid(
        "flist",
        "push",
        str(flist),
        "app.fl",
        "--hub",
        hub.url,
        "--json",
        home=tmp_path / "alice",
        ledger=hub_ledger.url,
    )
    assert pushed.returncode == 0, pushed.stderr
    report = json.loads(pushed.stdout)
    assert (report["owner"], report["blocks"], report["uploaded"]) == (publisher, 4, 4)

    listed = zgrid_here("flist", "ls", str(publisher), "--hub", hub.url, "--json")
    assert [item["name"] for item in json.loads(listed.stdout)] == ["app.fl"]
    # Without a twin id, ls lists your own flists, and pull NAME means your own.
    mine = zgrid_here(
        "flist", "ls", "--hub", hub.url, "--json", home=tmp_path / "alice", ledger=hub_ledger.url
    )
    assert mine.returncode == 0, mine.stderr
    assert [item["name"] for item in json.loads(mine.stdout)] == ["app.fl"]
    owners = zgrid_here("flist", "ls", "--owners", "--hub", hub.url, "--json")
    assert {"owner": publisher, "count": 1} in json.loads(owners.stdout)
    own = zgrid_here(
        "flist",
        "pull",
        "app.fl",
        "-o",
        str(tmp_path / "own.fl"),
        "--hub",
        hub.url,
        home=tmp_path / "alice",
        ledger=hub_ledger.url,
    )
    assert own.returncode == 0, own.stderr

    # Another user, with no identity at all, pulls it with every block.
    pulled = run_zgrid(
        "flist",
        "pull",
        f"{publisher}/app.fl",
        "-o",
        str(tmp_path / "got.fl"),
        "--blocks",
        f"dir://{tmp_path}/local",
        "--hub",
        hub.url,
        "--json",
        home=tmp_path / "bob",
        ledger=hub_ledger.url,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["copied"] == 4
    out = tmp_path / "out"
    unpacked = run_zgrid(
        "flist", "unpack", str(tmp_path / "got.fl"), str(out), "--store", f"dir://{tmp_path}/local"
    )
    assert unpacked.returncode == 0, unpacked.stderr
    assert (out / "etc/motd").read_text() == "welcome\n"
    assert (out / "blob").read_bytes() == (source / "blob").read_bytes()

    by_hash = zgrid_here(
        "flist", "pull", report["hash"], "-o", str(tmp_path / "h.fl"), "--hub", hub.url
    )
    assert by_hash.returncode == 0, by_hash.stderr
    assert (tmp_path / "h.fl").read_bytes() == (tmp_path / "got.fl").read_bytes()
    assert (tmp_path / "own.fl").read_bytes() == (tmp_path / "got.fl").read_bytes()


def test_cli_errors_are_one_line(
    tmp_path: Path, hub: HubProcess, hub_ledger: LedgerProcess
) -> None:
    make_user(tmp_path / "carol", hub_ledger.url)
    cases = [
        (("flist", "pull", "x/app.fl", "-o", "o.fl", "--hub", hub.url), "twin id"),
        (
            ("flist", "pull", "1/nothing.fl", "-o", str(tmp_path / "o.fl"), "--hub", hub.url),
            "error:",
        ),
        (("flist", "ls", "--hub", "http://127.0.0.1:1", "--retry-for", "0"), "error:"),
        (("flist", "push", str(tmp_path / "none.fl"), "x.fl", "--hub", hub.url), "error:"),
    ]
    for args, message in cases:
        result = zgrid_here(*args, home=tmp_path / "carol", ledger=hub_ledger.url)
        assert result.returncode == 1, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
