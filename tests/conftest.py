"""Fixtures and rules shared by every test.

A test that needs a system tool calls :func:`require_tool`: on a laptop it
skips, under CI (``CI=true``) it fails, because CI installs every tool and a
skip there hides a gap.

Every process of the suite has ``$ZGRID_KEY_FILE`` set to a key file of its own, so the
encrypted store of each test's ``$ZGRID_HOME`` opens without a prompt.

The suite starts hundreds of Python processes (`zgrid` commands, servers, node daemons).
Each of them compiles what it imports unless bytecode is cached; where the environment says
not to write bytecode next to the sources (``$PYTHONDONTWRITEBYTECODE``), the suite's
processes keep it in a cache directory of the run's own (``$PYTHONPYCACHEPREFIX``) instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Fixtures made once per test process for every module that uses them.
pytest_plugins = ["tests.explorer.fixtures"]


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


# Commands that sign open the encrypted store under $ZGRID_HOME, which needs a key. Every
# process of the suite (and every `zgrid` it starts, which inherits the environment) gets
# one key file, so nothing waits at a prompt; tests about passphrases set their own env.
_SESSION_KEYS: list[str] = []
_BYTECODE_CACHE: list[str] = []


def _cache_bytecode() -> None:
    """Let the suite's Python processes reuse compiled bytecode (the first run's process, not
    a worker that inherited the variables, makes the directory and removes it at the end)."""
    if os.environ.get("PYTHONPYCACHEPREFIX") or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    _BYTECODE_CACHE.append(tempfile.mkdtemp(prefix="zgrid-test-pycache-"))
    os.environ["PYTHONPYCACHEPREFIX"] = _BYTECODE_CACHE[0]
    del os.environ["PYTHONDONTWRITEBYTECODE"]


def pytest_configure(config: pytest.Config) -> None:
    _cache_bytecode()
    directory = tempfile.mkdtemp(prefix="zgrid-test-key-")
    key_file = os.path.join(directory, "store.key")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    os.environ["ZGRID_KEY_FILE"] = key_file
    os.environ.pop("ZGRID_PASSPHRASE", None)
    _SESSION_KEYS.append(directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _SESSION_KEYS:
        shutil.rmtree(_SESSION_KEYS.pop(), ignore_errors=True)
    while _BYTECODE_CACHE:
        shutil.rmtree(_BYTECODE_CACHE.pop(), ignore_errors=True)
