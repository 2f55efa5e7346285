"""The local store as commands open it: unlocked from the environment or a hidden prompt.

A command that signs gets its identity here. The key comes from ``$ZGRID_PASSPHRASE`` or
``$ZGRID_KEY_FILE``; else, on a terminal, the passphrase is asked for (hidden, twice when
a new store is made); else the command fails with what to set. The store is opened once
per command run, so the passphrase is asked (and Argon2id paid) at most once.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

from zgrid.cli.context import settings
from zgrid.cli.output import err_console

if TYPE_CHECKING:
    from pathlib import Path

    from zgrid.client import NetworkConfig, Notice, Store
    from zgrid.identity import Identity

__all__ = [
    "current_network",
    "identity_name",
    "is_node_key_dir",
    "open_store",
    "own_address",
    "signing_identity",
]

_META_KEY = "zgrid.store"


def _terminal_prompt(text: str, confirm: bool) -> str:
    value = typer.prompt(text, hide_input=True, confirmation_prompt=confirm, err=True)
    return str(value)


def _print_notice(notice: Notice) -> None:
    err_console.print(notice.message)


def is_node_key_dir(home: Path) -> bool:
    """Whether ``home`` is a node's key directory (``<data>/identity``, zgrid.node.keys).

    The node daemon reads its plain identity.json there at every start and makes a new
    key if it is gone, so the store reads that file in place and never moves it.
    """
    return home.name == "identity"


def open_store(ctx: typer.Context) -> Store:
    """This run's store in ``$ZGRID_HOME`` (the same object for every caller of one run)."""
    meta = ctx.meta  # shared by every context of one command line
    found = meta.get(_META_KEY)
    if found is None:
        from zgrid.client import Store, Unlocker  # noqa: PLC0415  # only commands using the store load it

        home = settings(ctx).home
        prompt = _terminal_prompt if sys.stdin.isatty() else None
        found = Store(
            home,
            unlocker=Unlocker.from_env(os.environ, prompt=prompt),
            on_notice=_print_notice,
            migrate_legacy=not is_node_key_dir(home),
        )
        meta[_META_KEY] = found
    store: Store = found
    return store


def identity_name(ctx: typer.Context) -> str:
    """Who signs: the current network's identity if a network is configured, else default."""
    store = open_store(ctx)
    current = store.current_network
    return "default" if current is None else store.network(current).identity


def signing_identity(ctx: typer.Context) -> Identity:
    """The identity commands sign with, unlocked from the store."""
    return open_store(ctx).identity(identity_name(ctx))


def own_address(ctx: typer.Context) -> str:
    """The address of the identity commands sign with (read in clear: no key asked for)."""
    return open_store(ctx).address(identity_name(ctx))


def current_network(ctx: typer.Context) -> NetworkConfig | None:
    """$ZGRID_NETWORK (as the deploy commands take it), else the current network; None if
    there is none (read in clear: no key asked for).

    A missing $ZGRID_HOME is a store without networks, not an error.
    """
    store = open_store(ctx)
    name = os.environ.get("ZGRID_NETWORK") or store.current_network
    return None if name is None else store.network(name)
