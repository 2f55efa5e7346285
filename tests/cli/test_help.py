"""Every command's `--help`, walked from the root of the command tree."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main

from zgrid.cli import app, main


# typer carries its own copy of click, so its classes are looked at by what they have.
def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            found.extend(_commands(sub, (*path, name)))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_tree_is_walked() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "identity new", "deployment check", "chain run", "flist pack"} <= paths
    assert len(paths) > 20


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) or "zgrid" for path, _ in COMMANDS]
)
def test_help_shows_no_value_for_flags(
    path: tuple[str, ...], command: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("Usage: zgrid"), shown
    assert not re.search(r"<bool>|\bBOOLEAN\b|<boolean>", shown, re.IGNORECASE), shown
    flags = [
        option
        for param in command.params
        if param.param_type_name == "option" and param.is_flag and not param.hidden
        for option in param.opts
    ]
    assert "--help" in shown
    for flag in [*flags, "--help"]:
        # A flag's line is the flag, then its help text: no value placeholder after it.
        # A short flag stands before its long name: "-f, --follow  help".
        line = rf"^\s+(-\w, )?{re.escape(flag)}(, --[\w-]+)?(  |$)"
        assert re.search(line, shown, re.MULTILINE), (
            f"{flag} of `zgrid {' '.join(path)}` is shown with a value:\n{shown}"
        )
