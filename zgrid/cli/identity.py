"""`zgrid identity`: create, import and show the keys this machine signs with.

Identities live sealed in the store under $ZGRID_HOME (see zgrid.client.Store): making or
reading one needs the store's key, from $ZGRID_PASSPHRASE, $ZGRID_KEY_FILE or a prompt.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zgrid.cli.output import emit_json, err_console, out_console
from zgrid.cli.store_access import identity_name, open_store
from zgrid.identity import Identity, MnemonicError, new_mnemonic

if TYPE_CHECKING:
    from zgrid.client import Store

app = typer.Typer(help="Create, import and show your signing identities.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ShowMnemonic = Annotated[
    bool, typer.Option("--show-mnemonic", help="Also print the secret mnemonic phrase.")
]
Force = Annotated[
    bool, typer.Option("--force", help="Replace an existing identity (its key is lost).")
]
NameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Which identity (default: the current network's, else 'default').",
        show_default=False,
    ),
]
_MAX_PHRASE_BYTES = 4096


def _report(
    store: Store,
    name: str,
    address: str,
    *,
    mnemonic: str | None,
    as_json: bool,
    action: str,
) -> None:
    path = store.identity_path(name)
    if not path.exists() and (store.home / "identity.json").exists():
        path = store.home / "identity.json"  # a node's key, read in place (never moved)
    document: dict[str, Any] = {"name": name, "address": address, "path": str(path)}
    if mnemonic is not None:
        document["mnemonic"] = mnemonic
    if as_json:
        emit_json(document)
        return
    if action:
        out_console.print(f"{action} identity {name!r} in {path}")
    out_console.print(f"address: {address}")
    if mnemonic is not None:
        out_console.print(f"mnemonic: {mnemonic}")


def _name(ctx: typer.Context, name: str | None) -> str:
    return identity_name(ctx) if name is None else name


@app.command()
def new(
    ctx: typer.Context,
    name: NameOption = None,
    as_json: JsonOption = False,
    show_mnemonic: ShowMnemonic = False,
    force: Force = False,
) -> None:
    """Make a new identity from a fresh 24-word mnemonic."""
    store = open_store(ctx)
    chosen = _name(ctx, name)
    phrase = new_mnemonic()
    identity = store.add_identity(phrase, name=chosen, overwrite=force)
    shown = phrase if show_mnemonic else None
    _report(store, chosen, identity.address, mnemonic=shown, as_json=as_json, action="created")
    if not show_mnemonic and not as_json:
        flag = "" if name is None else f" --name {chosen}"
        err_console.print(
            f"Back up the mnemonic now: `zgrid identity show{flag} --show-mnemonic`. "
            "Whoever has it controls this identity."
        )


def _read_mnemonic(mnemonic_file: Path | None) -> str:
    # Never from the command line: argv is visible to every user in `ps`.
    if mnemonic_file is not None and str(mnemonic_file) != "-":
        try:
            with mnemonic_file.open("rb") as source:
                raw = source.read(_MAX_PHRASE_BYTES + 1)
        except OSError as exc:
            raise MnemonicError(f"cannot read {mnemonic_file}: {exc.strerror or exc}") from exc
    elif mnemonic_file is None and sys.stdin.isatty():
        return str(typer.prompt("Mnemonic", hide_input=True, err=True))
    else:
        raw = sys.stdin.buffer.read(_MAX_PHRASE_BYTES + 1)
    if len(raw) > _MAX_PHRASE_BYTES:
        raise MnemonicError(f"a mnemonic is at most {_MAX_PHRASE_BYTES} bytes; this input is more")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MnemonicError("the mnemonic is not UTF-8 text") from exc


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
    name: NameOption = None,
    as_json: JsonOption = False,
    force: Force = False,
) -> None:
    """Recreate an identity from an existing BIP39 mnemonic."""
    store = open_store(ctx)
    chosen = _name(ctx, name)
    identity = store.add_identity(_read_mnemonic(mnemonic_file), name=chosen, overwrite=force)
    _report(store, chosen, identity.address, mnemonic=None, as_json=as_json, action="imported")


@app.command()
def show(
    ctx: typer.Context,
    name: NameOption = None,
    as_json: JsonOption = False,
    show_mnemonic: ShowMnemonic = False,
) -> None:
    """Show the address of an identity (unlocking the store checks its key is whole)."""
    store = open_store(ctx)
    chosen = _name(ctx, name)
    phrase = store.mnemonic(chosen)
    address = Identity.from_mnemonic(phrase).address
    shown = phrase if show_mnemonic else None
    _report(store, chosen, address, mnemonic=shown, as_json=as_json, action="")


@app.command("ls")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the identities and their addresses (no passphrase needed)."""
    store = open_store(ctx)
    found = store.identities()
    if as_json:
        emit_json([{"name": name, "address": address} for name, address in found])
        return
    if not found:
        out_console.print("no identities: create one with `zgrid identity new`")
    for name, address in found:
        out_console.print(f"{name}  {address}")
