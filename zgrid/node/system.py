"""Running the system tools a node drives (ip, runc, mount, losetup, mkfs.ext4 ...).

Every tool is run with an argument list (never a shell), a time limit and its output
captured, and a failure becomes :class:`SystemCommandError` quoting what it printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence

from zgrid.node.errors import SystemCommandError

__all__ = ["run_command", "run_command_sync"]

_DEFAULT_TIMEOUT = 60.0
_OUTPUT_LIMIT = 1 << 20  # bytes of output kept; tools that print more are cut


async def run_command(
    argv: Sequence[str],
    *,
    timeout: float = _DEFAULT_TIMEOUT,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run ``argv`` and return its stdout (text); stderr is kept for the error message.

    With ``check`` a non-zero exit raises SystemCommandError; a command still running after
    ``timeout`` seconds is killed and raises it too (code -9).
    """
    args = [str(part) for part in argv]
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=None if env is None else {**os.environ, **env},
        )
    except OSError as exc:
        raise SystemCommandError(args, None, str(exc)) from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(input), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise SystemCommandError(args, -9, f"still running after {timeout:g} s") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    out = stdout[:_OUTPUT_LIMIT].decode(errors="replace")
    if check and process.returncode != 0:
        err = stderr[:_OUTPUT_LIMIT].decode(errors="replace")
        raise SystemCommandError(args, process.returncode, err or out)
    return out


def run_command_sync(
    argv: Sequence[str], *, timeout: float = _DEFAULT_TIMEOUT, check: bool = True
) -> str:
    """:func:`run_command` for code that has no event loop (CLI, test fixtures)."""
    return asyncio.run(run_command(argv, timeout=timeout, check=check))
