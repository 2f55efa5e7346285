"""`zgrid identity` through the real console script, as a user runs it.

The suite's key file ($ZGRID_KEY_FILE, tests/conftest.py) opens every store unless a test
sets its own environment.
"""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.client.store.clear_search import assert_nothing_in_clear
from tests.processes import ZGRID, run_zgrid, zgrid_here
from zgrid import __version__
from zgrid.cli import main
from zgrid.identity import new_mnemonic, save_identity


def zgrid(
    *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """In-process (``zgrid.cli.main``, no Python start-up); :func:`zgrid_env` and the
    version, usage and terminal tests run the console script."""
    return zgrid_here(*args, home=home, stdin=stdin)


def zgrid_env(
    home: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`zgrid` with the store's variables as given (the suite's key file left out), in-process
    like :func:`zgrid`; tests/cli/test_network_cli.py runs the console script without a key."""
    unset: dict[str, str | None] = {"ZGRID_KEY_FILE": None, "ZGRID_PASSPHRASE": None}
    return zgrid_here(*args, home=home, stdin=stdin, env={**unset, **env})


def test_version() -> None:
    result = run_zgrid("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"zgrid {__version__}"


def test_new_then_show_json(tmp_path: Path) -> None:
    created = zgrid("identity", "new", "--json", home=tmp_path)
    assert created.returncode == 0, created.stderr
    document = json.loads(created.stdout)
    address = document["address"]
    assert "mnemonic" not in created.stdout
    assert document["name"] == "default"
    assert document["path"] == str(tmp_path / "identities" / "default.json")
    shown = zgrid("identity", "show", "--json", home=tmp_path)
    assert shown.returncode == 0
    document = json.loads(shown.stdout)
    assert document["address"] == address
    assert len(address) == 64
    assert "mnemonic" not in document
    assert stat.S_IMODE((tmp_path / "identities" / "default.json").stat().st_mode) == 0o600
    assert not (tmp_path / "identity.json").exists()


def test_mnemonic_only_printed_when_asked(tmp_path: Path) -> None:
    created = zgrid("identity", "new", home=tmp_path)
    shown = zgrid("identity", "show", "--show-mnemonic", "--json", home=tmp_path)
    phrase = json.loads(shown.stdout)["mnemonic"]
    assert len(phrase.split()) == 24
    assert phrase not in created.stdout + created.stderr
    assert "Back up the mnemonic now" in created.stderr
    plain = zgrid("identity", "show", home=tmp_path)
    assert phrase not in plain.stdout + plain.stderr
    assert (
        f"mnemonic: {phrase}" in zgrid("identity", "show", "--show-mnemonic", home=tmp_path).stdout
    )


def test_import_twice_gives_the_same_key(tmp_path: Path) -> None:
    zgrid("identity", "new", home=tmp_path / "a")
    shown = json.loads(
        zgrid("identity", "show", "--show-mnemonic", "--json", home=tmp_path / "a").stdout
    )
    phrase, original = shown["mnemonic"], shown["address"]
    phrase_file = tmp_path / "phrase.txt"
    phrase_file.write_text(phrase + "\n")
    from_file = zgrid(
        "identity", "import", "--mnemonic-file", str(phrase_file), "--json", home=tmp_path / "b"
    )
    from_pipe = zgrid("identity", "import", "--json", stdin=phrase.upper(), home=tmp_path / "c")
    assert from_file.returncode == from_pipe.returncode == 0, from_file.stderr + from_pipe.stderr
    assert (
        json.loads(from_file.stdout)["address"]
        == json.loads(from_pipe.stdout)["address"]
        == original
    )


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    assert zgrid("identity", "new", home=tmp_path).returncode == 0
    path = tmp_path / "identities" / "default.json"
    before = path.read_bytes()
    again = zgrid("identity", "new", home=tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ")
    assert "refusing to overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    assert path.read_bytes() == before
    assert zgrid("identity", "new", "--force", home=tmp_path).returncode == 0
    assert path.read_bytes() != before


def test_named_identities_and_ls(tmp_path: Path) -> None:
    ops = json.loads(zgrid("identity", "new", "--name", "ops", "--json", home=tmp_path).stdout)
    default = json.loads(zgrid("identity", "new", "--json", home=tmp_path).stdout)
    listed = zgrid_env(tmp_path, "identity", "ls", "--json")  # no key: addresses are clear
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"name": "default", "address": default["address"]},
        {"name": "ops", "address": ops["address"]},
    ]
    shown = json.loads(zgrid("identity", "show", "--name", "ops", "--json", home=tmp_path).stdout)
    assert shown["address"] == ops["address"]
    bad = zgrid("identity", "new", "--name", "Not/Valid", home=tmp_path)
    assert bad.returncode == 1 and "is not a valid identity name" in bad.stderr


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("one two three", "got 3"), (" ".join(["abandon"] * 24), "checksum does not match")],
)
def test_import_bad_phrase_is_one_clear_line(tmp_path: Path, stdin: str, message: str) -> None:
    result = zgrid("identity", "import", stdin=stdin, home=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "identities").exists()


def test_import_refuses_an_endless_input(tmp_path: Path) -> None:
    result = zgrid("identity", "import", stdin="abandon " * 10_000, home=tmp_path)
    assert result.returncode == 1
    assert "a mnemonic is at most 4096 bytes" in result.stderr


def test_show_without_identity(tmp_path: Path) -> None:
    result = zgrid("identity", "show", home=tmp_path)
    assert result.returncode == 1
    assert f"no identity in {tmp_path} named 'default'" in result.stderr


def test_a_passphrase_store_from_the_environment(tmp_path: Path) -> None:
    created = zgrid_env(tmp_path, "identity", "new", "--json", ZGRID_PASSPHRASE="pass one")
    assert created.returncode == 0, created.stderr
    assert json.loads((tmp_path / "store.json").read_text())["kind"] == "passphrase"
    shown = zgrid_env(tmp_path, "identity", "show", "--json", ZGRID_PASSPHRASE="pass one")
    assert json.loads(shown.stdout)["address"] == json.loads(created.stdout)["address"]
    wrong = zgrid_env(tmp_path, "identity", "show", ZGRID_PASSPHRASE="pass two")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == f"error: wrong passphrase for the store in {tmp_path}"
    locked = zgrid_env(tmp_path, "identity", "show")
    assert locked.returncode == 1
    assert locked.stderr.strip() == (
        f"error: the store in {tmp_path} is locked: set ZGRID_PASSPHRASE, or run the command "
        "on a terminal to type the passphrase"
    )


def test_a_key_file_is_made_for_a_new_store_and_said(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "zgrid.key"
    home = tmp_path / "home"
    created = zgrid_env(home, "identity", "new", ZGRID_KEY_FILE=str(key_file))
    assert created.returncode == 0, created.stderr
    assert f"created the key file {key_file}" in created.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(0o644)
    refused = zgrid_env(home, "identity", "show", ZGRID_KEY_FILE=str(key_file))
    assert refused.returncode == 1
    assert "may be read by others (mode 0644)" in refused.stderr


def test_an_old_plain_identity_is_migrated_once(tmp_path: Path) -> None:
    phrase = new_mnemonic()
    old = save_identity(tmp_path, phrase)
    first = zgrid("identity", "show", "--json", home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["address"] == old.identity.address
    assert f"moved the plain identity {tmp_path / 'identity.json'}" in first.stderr
    assert phrase not in first.stderr + first.stdout
    assert not (tmp_path / "identity.json").exists()
    second = zgrid("identity", "show", "--show-mnemonic", "--json", home=tmp_path)
    assert json.loads(second.stdout)["mnemonic"] == phrase
    assert second.stderr == ""


def _pty_zgrid(home: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """`zgrid` on a terminal: each answer typed when the next prompt shows."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ZGRID_KEY_FILE", "ZGRID_PASSPHRASE")
    }
    environ["ZGRID_HOME"] = str(home)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [ZGRID, *args], stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=environ
    )
    os.close(follower)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
            if pending and seen.rstrip().endswith(b":"):
                # getpass turns echo off (flushing what was typed) after the prompt shows:
                # type only once it has, as a person would see the cursor wait.
                while termios.tcgetattr(leader)[3] & termios.ECHO and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.write(leader, pending.pop(0).encode() + b"\n")
                seen += b"<answered>"
            if process.poll() is not None and not ready:
                break
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return process.returncode, seen.decode(errors="replace") + output


def test_on_a_terminal_the_passphrase_is_asked_hidden(tmp_path: Path) -> None:
    code, shown = _pty_zgrid(tmp_path, ["identity", "new", "--json"], ["tty pass", "tty pass"])
    assert code == 0, shown
    assert "New passphrase for the store in" in shown and "Repeat for confirmation" in shown
    assert "tty pass" not in shown  # hidden input is not echoed
    code, shown = _pty_zgrid(tmp_path, ["identity", "show"], ["tty pass"])
    assert code == 0, shown
    assert "Passphrase of the store in" in shown and "address: " in shown
    code, shown = _pty_zgrid(tmp_path, ["identity", "show"], ["not it"])
    assert code == 1 and "wrong passphrase" in shown


def test_usage_error_exits_2() -> None:
    result = run_zgrid("identity", "frobnicate")
    assert result.returncode == 2


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["identity"],
        ["identity", "new"],
        ["identity", "import"],
        ["identity", "show"],
        ["identity", "ls"],
        ["deployment", "check"],
        ["deployment", "sign"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = zgrid(*command, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_in_process_main_with_home_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(tmp_path), "identity", "new", "--json"]) == 0
    address = json.loads(capsys.readouterr().out)["address"]
    assert main(["--home", str(tmp_path), "identity", "show"]) == 0
    assert address in capsys.readouterr().out
    assert main(["--home", str(tmp_path / "none"), "identity", "show"]) == 1
    assert "no identity" in capsys.readouterr().err


def test_a_command_that_signs_says_what_to_set_when_locked(tmp_path: Path) -> None:
    assert zgrid_env(tmp_path, "identity", "new", ZGRID_PASSPHRASE="p w").returncode == 0
    locked = zgrid_env(tmp_path, "twin", "create", "--ledger", "http://127.0.0.1:9")
    assert locked.returncode == 1
    assert locked.stderr.startswith(
        f"error: the store in {tmp_path} is locked: set ZGRID_PASSPHRASE"
    )
    assert len(locked.stderr.splitlines()) == 1
    # Reading an address needs no key: the store keeps addresses in clear.
    shown = zgrid_env(tmp_path, "twin", "show", "--ledger", "http://127.0.0.1:9")
    assert "locked" not in shown.stderr


def test_a_node_key_directory_is_read_in_place(tmp_path: Path) -> None:
    """`zgrid --home <data>/identity ...` (the node's faucet hint) never moves the node's key."""
    data = tmp_path / "node"
    made = run_zgrid("node", "address", "--data", str(data))
    assert made.returncode == 0, made.stderr
    keys = data / "identity"
    shown = zgrid_env(keys, "identity", "show", "--json")  # no key needed: nothing is sealed
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["address"] == made.stdout.strip()
    assert json.loads(shown.stdout)["path"] == str(keys / "identity.json")
    assert (keys / "identity.json").exists()
    assert not (keys / "store.json").exists()
    again = run_zgrid("node", "address", "--data", str(data))
    assert again.stdout == made.stdout


def test_the_cli_leaves_no_secret_in_clear(tmp_path: Path) -> None:
    old = new_mnemonic()
    save_identity(tmp_path, old)  # moved in by the first command below
    env = {"ZGRID_PASSPHRASE": "cli pass"}
    assert zgrid_env(tmp_path, "identity", "new", "--name", "ops", **env).returncode == 0
    imported = new_mnemonic()
    done = zgrid_env(tmp_path, "identity", "import", "--name", "imp", stdin=imported, **env)
    assert done.returncode == 0, done.stderr
    shown = zgrid_env(
        tmp_path, "identity", "show", "--name", "ops", "--show-mnemonic", "--json", **env
    )
    ops = json.loads(shown.stdout)["mnemonic"]
    assert zgrid_env(tmp_path, "network", "add", "dev", "--ledger", "http://h").returncode == 0
    assert_nothing_in_clear(tmp_path, [old, ops, imported], ["cli pass"])
