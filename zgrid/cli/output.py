"""How commands talk to people and scripts: one JSON document on stdout, or rich text."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["emit_json", "err_console", "one_line", "out_console"]

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
