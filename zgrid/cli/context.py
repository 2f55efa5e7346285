"""Settings every command shares, resolved once at the root of the command tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

__all__ = ["CliSettings", "settings"]


@dataclass(frozen=True)
class CliSettings:
    home: Path


def settings(ctx: typer.Context) -> CliSettings:
    found = ctx.find_object(CliSettings)
    assert found is not None, "the root command sets the settings before any sub-command runs"
    return found
