"""Fixtures and rules shared by every test.

A test that needs a system tool calls :func:`require_tool`: on a laptop it
skips, under CI (``CI=true``) it fails, because CI installs every tool and a
skip there hides a gap.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _missing(f"needs the {name!r} tool on PATH")
    assert path is not None
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        _missing("needs root")
