"""How commands talk to people and scripts: one JSON document on stdout, or rich text."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

from rich.console import Console

__all__ = [
    "emit_json",
    "err_console",
    "one_line",
    "out_console",
    "table_console",
    "term_as_interrupt",
]

# No markup and no emoji codes: paths, names and error texts are the user's, and "[...]"
# or ":name:" in them is literal.
out_console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def one_line(message: str) -> str:
    """A message as one line: its non-empty lines joined by "; " (errors are one line)."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def emit_json(document: Any) -> None:
    """Write one JSON document and a newline to stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


_WIDE = 200  # columns of a table when stdout is not a terminal: a pipe gets whole lines


def table_console() -> Console:
    """Where tables go: stdout, at the terminal's width, or wide enough not to wrap in a pipe."""
    if out_console.is_terminal:
        return out_console
    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False, width=_WIDE)


def term_as_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler for servers: SIGTERM takes the same road as SIGINT. asyncio then
    cancels only the main task, whose cleanup ends the server cleanly (the ledger seals its
    open block); a KeyboardInterrupt raised here instead would escape the loop and cancel
    its tasks before they finish."""
    signal.raise_signal(signal.SIGINT)
