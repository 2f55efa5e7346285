"""`zgrid identity`: create, import and show the key this machine signs with."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zgrid.cli.context import settings
from zgrid.cli.output import emit_json, err_console, out_console
from zgrid.identity import (
    MnemonicError,
    StoredIdentity,
    load_identity,
    new_mnemonic,
    save_identity,
)

app = typer.Typer(help="Create, import and show your signing identity.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ShowMnemonic = Annotated[
    bool, typer.Option("--show-mnemonic", help="Also print the secret mnemonic phrase.")
]
Force = Annotated[
    bool, typer.Option("--force", help="Replace an existing identity (its key is lost).")
]


def _report(stored: StoredIdentity, *, as_json: bool, show_mnemonic: bool, action: str) -> None:
    document = {"address": stored.identity.address, "path": str(stored.path)}
    if show_mnemonic:
        document["mnemonic"] = stored.mnemonic
    if as_json:
        emit_json(document)
        return
    if action:
        out_console.print(f"{action} identity in {stored.path}")
    out_console.print(f"address: {stored.identity.address}")
    if show_mnemonic:
        out_console.print(f"mnemonic: {stored.mnemonic}")


@app.command()
def new(
    ctx: typer.Context,
    as_json: JsonOption = False,
    show_mnemonic: ShowMnemonic = False,
    force: Force = False,
) -> None:
    """Make a new identity from a fresh 24-word mnemonic."""
    stored = save_identity(settings(ctx).home, new_mnemonic(), overwrite=force)
    _report(stored, as_json=as_json, show_mnemonic=show_mnemonic, action="created")
    if not show_mnemonic and not as_json:
        err_console.print(
            "Back up the mnemonic now: `zgrid identity show --show-mnemonic`. "
            "Whoever has it controls this identity."
        )


def _read_mnemonic(mnemonic_file: Path | None) -> str:
    # Never from the command line: argv is visible to every user in `ps`.
    if mnemonic_file is not None and str(mnemonic_file) != "-":
        try:
            return mnemonic_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise MnemonicError(f"cannot read {mnemonic_file}: {exc.strerror or exc}") from exc
    if mnemonic_file is None and sys.stdin.isatty():
        return str(typer.prompt("Mnemonic", hide_input=True))
    return sys.stdin.read()


@app.command("import")
def import_(
    ctx: typer.Context,
    mnemonic_file: Annotated[
        Path | None,
        typer.Option(
            "--mnemonic-file",
            help="Read the phrase from this file ('-' for standard input). "
            "Without it the phrase is asked for, or read from a pipe.",
        ),
    ] = None,
    as_json: JsonOption = False,
    force: Force = False,
) -> None:
    """Recreate an identity from an existing BIP39 mnemonic."""
    stored = save_identity(settings(ctx).home, _read_mnemonic(mnemonic_file), overwrite=force)
    _report(stored, as_json=as_json, show_mnemonic=False, action="imported")


@app.command()
def show(
    ctx: typer.Context, as_json: JsonOption = False, show_mnemonic: ShowMnemonic = False
) -> None:
    """Show the address of this machine's identity."""
    stored = load_identity(settings(ctx).home)
    _report(stored, as_json=as_json, show_mnemonic=show_mnemonic, action="")
