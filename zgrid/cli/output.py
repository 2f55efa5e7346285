"""How commands talk to people and scripts: one JSON document on stdout, or rich text."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["emit_json", "err_console", "out_console"]

# No markup: paths, names and error texts are the user's, and "[...]" in them is literal.
out_console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def emit_json(document: Any) -> None:
    """Write one JSON document and a newline to stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
