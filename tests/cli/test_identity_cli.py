"""`zgrid identity` through the real console script, as a user runs it."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.processes import run_zgrid
from zgrid import __version__
from zgrid.cli import main


def zgrid(
    *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_zgrid(*args, home=home, stdin=stdin)


def test_version() -> None:
    result = zgrid("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"zgrid {__version__}"


def test_new_then_show_json(tmp_path: Path) -> None:
    created = zgrid("identity", "new", "--json", home=tmp_path)
    assert created.returncode == 0, created.stderr
    address = json.loads(created.stdout)["address"]
    assert "mnemonic" not in created.stdout
    shown = zgrid("identity", "show", "--json", home=tmp_path)
    assert shown.returncode == 0
    document = json.loads(shown.stdout)
    assert document["address"] == address
    assert len(address) == 64
    assert "mnemonic" not in document
    assert stat.S_IMODE((tmp_path / "identity.json").stat().st_mode) == 0o600


def test_mnemonic_only_printed_when_asked(tmp_path: Path) -> None:
    created = zgrid("identity", "new", home=tmp_path)
    phrase = json.loads((tmp_path / "identity.json").read_text())["mnemonic"]
    assert phrase not in created.stdout + created.stderr
    shown = zgrid("identity", "show", "--show-mnemonic", "--json", home=tmp_path)
    assert json.loads(shown.stdout)["mnemonic"] == phrase


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
    before = (tmp_path / "identity.json").read_bytes()
    again = zgrid("identity", "new", home=tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ")
    assert "refusing to overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    assert (tmp_path / "identity.json").read_bytes() == before
    assert zgrid("identity", "new", "--force", home=tmp_path).returncode == 0
    assert (tmp_path / "identity.json").read_bytes() != before


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("one two three", "got 3"), (" ".join(["abandon"] * 24), "checksum does not match")],
)
def test_import_bad_phrase_is_one_clear_line(tmp_path: Path, stdin: str, message: str) -> None:
    result = zgrid("identity", "import", stdin=stdin, home=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "identity.json").exists()


def test_show_without_identity(tmp_path: Path) -> None:
    result = zgrid("identity", "show", home=tmp_path)
    assert result.returncode == 1
    assert "no identity in" in result.stderr


def test_usage_error_exits_2() -> None:
    result = zgrid("identity", "frobnicate")
    assert result.returncode == 2


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["identity"],
        ["identity", "new"],
        ["identity", "import"],
        ["identity", "show"],
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
