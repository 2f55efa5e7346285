"""Where commands find the ledger and the hub: --flag, else $ZGRID_*, else the current network.

Against a real ledger, where the account holds a token: a balance of 1 says it answered,
an error naming a dead URL says that URL was picked. Every run is without a key ($ZGRID_KEY_FILE, $ZGRID_PASSPHRASE unset, stdin no
terminal): reading the current network must never need one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.processes import ZGRID
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.cli import app, main
from zgrid.cli.context import CliSettings
from zgrid.cli.ledger_options import DEFAULT_HUB, DEFAULT_LEDGER
from zgrid.client import NetworkConfig, Store, Unlocker
from zgrid.identity import Identity, new_mnemonic

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port
REFUSED = "All connection attempts failed"
_UNSET = ("ZGRID_LEDGER", "ZGRID_HUB", "ZGRID_NETWORK", "ZGRID_KEY_FILE", "ZGRID_PASSPHRASE")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("ledger")) as process:
        yield process


def keyless(home: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """`zgrid` without any key or URL in its environment (but ``environ``), stdin closed."""
    env = {key: value for key, value in os.environ.items() if key not in _UNSET}
    env.update(ZGRID_HOME=str(home), **environ)
    return subprocess.run(
        [ZGRID, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def funded(
    tmp_path_factory: pytest.TempPathFactory, ledger: LedgerProcess
) -> tuple[Path, Identity]:
    """A home with an identity holding 1 token on the ledger (0 on any other)."""
    home = tmp_path_factory.mktemp("funded") / "home"
    identity = Store(home, unlocker=Unlocker.from_env(os.environ)).add_identity(new_mnemonic())
    with SyncChainClient(ledger.url, identity=identity) as client:
        client.faucet(UNITS_PER_TOKEN)
    return home, identity


@pytest.fixture
def no_key_nor_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment without a key or a URL (commands run in it by ``main``)."""
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)


def balance(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Any:
    """`zgrid account balance --json ARGS` run in this process: the free balance."""
    code = main(["--home", str(home), "account", "balance", "--json", *args])
    shown = capsys.readouterr()
    assert code == 0, shown.err
    return json.loads(shown.out)["free"]


def unreached(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> str:
    """The error of `zgrid account balance ARGS` when the ledger it picked does not answer."""
    code = main(["--home", str(home), "account", "balance", *args])
    shown = capsys.readouterr()
    assert code == 1, shown
    return shown.err.strip()


def test_the_console_script_finds_the_current_networks_ledger_without_a_key(
    funded: tuple[Path, Identity], ledger: LedgerProcess, tmp_path: Path
) -> None:
    _, identity = funded
    home = tmp_path / "home"
    Store(home).add_network(NetworkConfig(name="devnet", ledger=ledger.url))
    done = keyless(home, "account", "balance", identity.address, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["free"] == 1
    assert not (home / "store.json").exists()  # no key was made or asked for


@pytest.mark.usefixtures("no_key_nor_urls")
def test_the_flag_beats_the_environment_which_beats_the_current_network(
    funded: tuple[Path, Identity],
    ledger: LedgerProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, _ = funded  # your own address, read without a key
    store = Store(home)
    store.add_network(NetworkConfig(name="devnet", ledger=ledger.url), overwrite=True)
    store.use_network("devnet")
    assert balance(capsys, home) == 1  # the current network's ledger, no export needed
    monkeypatch.setenv("ZGRID_LEDGER", DEAD)
    assert unreached(capsys, home) == f"error: cannot reach the ledger at {DEAD}: {REFUSED}"
    assert balance(capsys, home, "--ledger", ledger.url) == 1
    monkeypatch.delenv("ZGRID_LEDGER")
    store.add_network(NetworkConfig(name="other", ledger=DEAD), overwrite=True)
    store.use_network("other")
    assert unreached(capsys, home).startswith(f"error: cannot reach the ledger at {DEAD}")
    monkeypatch.setenv("ZGRID_NETWORK", "devnet")  # as the deploy commands take it
    assert balance(capsys, home) == 1


@pytest.mark.usefixtures("no_key_nor_urls")
def test_a_missing_home_is_no_network_and_is_not_made(
    funded: tuple[Path, Identity],
    ledger: LedgerProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, identity = funded
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("ZGRID_LEDGER", ledger.url)
    assert balance(capsys, nowhere, identity.address) == 1
    assert not nowhere.exists()


@pytest.mark.usefixtures("no_key_nor_urls")
def test_a_bad_ledger_url_is_wrong_usage_wherever_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    by_flag = keyless(tmp_path, "chain", "status", "--ledger", "ftp://ledger")
    assert by_flag.returncode == 2
    assert "Invalid value for --ledger: expected http://HOST:PORT, got 'ftp://ledger'" in (
        by_flag.stderr
    )
    monkeypatch.setenv("ZGRID_LEDGER", "nonsense")
    assert main(["--home", str(tmp_path), "account", "balance", "ab" * 32]) == 2
    assert "expected http://HOST:PORT, got 'nonsense'" in capsys.readouterr().err


# --- every command that takes --ledger or --hub follows the rule (parsed, not run) --------

ROOT: Any = typer.main.get_command(app)

# Each command with a --ledger or --hub option, and the arguments it needs to parse.
WIRED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("account", "balance"): (),
    ("account", "discount"): (),
    ("account", "faucet"): ("1",),
    ("account", "transfer"): ("ab" * 32, "1"),
    ("chain", "advance"): ("1h",),
    ("chain", "status"): (),
    ("contract", "bills"): ("1",),
    ("contract", "ls"): (),
    ("contract", "show"): ("1",),
    ("explorer", "index"): (),
    ("explorer", "run"): (),
    ("farm", "add-ip"): ("1", "203.0.113.7/24", "203.0.113.1"),
    ("farm", "create"): ("f",),
    ("farm", "join-token"): ("1",),
    ("farm", "remove-node"): ("1", "2"),
    ("farm", "rewards"): ("1",),
    ("farm", "show"): ("1",),
    ("flist", "ls"): (),
    ("flist", "pull"): ("busybox.fl", "-o", "out.fl"),
    ("flist", "push"): ("in.fl", "busybox.fl"),
    ("hub", "run"): ("--data", "hub"),
    ("node", "run"): ("--farm", "1"),
    ("nodes",): (),
    ("twin", "create"): (),
    ("twin", "show"): (),
}
# `deployment check` verifies online only when asked; `network add` is given the URLs.
UNWIRED = {("deployment", "check"), ("network", "add")}


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


def parsed(home: Path, path: tuple[str, ...], args: tuple[str, ...]) -> dict[str, Any]:
    """The parameters ``zgrid PATH ARGS`` would run with (option callbacks included)."""
    context = ROOT.make_context("zgrid", [*path, *args], resilient_parsing=False)
    context.obj = CliSettings(home=home)
    command = ROOT
    rest = [*path, *args]
    for name in path:
        command = command.commands[name]
        rest = rest[1:]
        context = command.make_context(name, list(rest), parent=context)
    return dict(context.params)


def test_the_table_of_wired_commands_is_every_command_with_such_an_option() -> None:
    having = {
        path
        for path, command in _walk(ROOT)
        if any(
            option in ("--ledger", "--hub")
            for param in getattr(command, "params", [])
            for option in param.opts
        )
        and not hasattr(command, "commands")
    }
    assert having - UNWIRED == set(WIRED)


@pytest.mark.usefixtures("no_key_nor_urls")
@pytest.mark.parametrize("path", sorted(WIRED), ids=" ".join)
def test_each_command_takes_the_current_networks_urls(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    store = Store(tmp_path, unlocker=Unlocker())  # no key: networks are clear
    store.add_network(NetworkConfig(name="grid", ledger="http://l.example:1", hub="http://h:2"))
    params = parsed(tmp_path, path, WIRED[path])
    if "ledger" in params:
        assert params["ledger"] == "http://l.example:1"
    if "hub" in params:
        assert params["hub"] == "http://h:2"
    assert not (tmp_path / "store.json").exists()


@pytest.mark.usefixtures("no_key_nor_urls")
def test_the_order_is_flag_then_environment_then_network_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ls = ("flist", "ls")
    missing = tmp_path / "missing"
    found = parsed(missing, ls, ())
    assert (found["ledger"], found["hub"]) == (DEFAULT_LEDGER, DEFAULT_HUB)
    assert not missing.exists()
    # A network without a hub: its ledger, and the hub's own default.
    Store(tmp_path).add_network(NetworkConfig(name="nohub", ledger="http://l:1"))
    found = parsed(tmp_path, ls, ())
    assert (found["ledger"], found["hub"]) == ("http://l:1", DEFAULT_HUB)
    # The node's hub has no default of its own: none without a network's.
    assert parsed(tmp_path, ("node", "run"), ("--farm", "1"))["hub"] is None
    monkeypatch.setenv("ZGRID_LEDGER", "http://env-ledger:1")
    monkeypatch.setenv("ZGRID_HUB", "http://env-hub:1")
    found = parsed(tmp_path, ls, ())
    assert (found["ledger"], found["hub"]) == ("http://env-ledger:1", "http://env-hub:1")
    found = parsed(tmp_path, ls, ("--ledger", "http://flag:1", "--hub", "http://flag:2"))
    assert (found["ledger"], found["hub"]) == ("http://flag:1", "http://flag:2")


def test_help_says_where_the_default_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    for path in (("chain", "status"), ("flist", "ls"), ("node", "run")):
        assert main([*path, "--help"]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert "else the current network's ledger" in shown, shown
        if path != ("chain", "status"):
            assert "$ZGRID_HUB, else the current network's hub" in shown, shown
