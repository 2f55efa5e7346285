"""How the `zgrid` command ends: one `error:` line and 1, usage and 2, Ctrl-C and 130."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.processes import ZGRID, run_zgrid
from zgrid.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, main
from zgrid.cli.output import one_line


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ZGRID_HOME": str(home)}


def _read_until(fd: int, text: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no {text!r} within {timeout} s; saw {seen!r}")
        try:
            seen += os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
    return seen


def _prompting(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`zgrid identity import` on a terminal, stopped at its hidden "Mnemonic:" prompt."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [ZGRID, "identity", "import"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=_env(home),
        start_new_session=True,
    )
    os.close(terminal)
    _read_until(controller, b"Mnemonic")
    # The hidden prompt turns echo off and flushes pending input: type only after that.
    deadline = time.monotonic() + 30
    while termios.tcgetattr(controller)[3] & termios.ECHO:
        assert time.monotonic() < deadline, "the prompt never turned echo off"
        time.sleep(0.01)
    return process, controller


def _finish(process: subprocess.Popen[bytes], controller: int) -> tuple[int, str]:
    output = b""
    try:
        while select.select([controller], [], [], 10)[0]:
            chunk = os.read(controller, 4096)
            if not chunk:
                break
            output += chunk
    except OSError:  # EIO once the child is gone
        pass
    finally:
        os.close(controller)
    return process.wait(timeout=30), output.decode(errors="replace")


def test_ctrl_c_at_a_prompt_exits_130(tmp_path: Path) -> None:
    process, controller = _prompting(tmp_path)
    process.send_signal(signal.SIGINT)
    code, output = _finish(process, controller)
    assert code == EXIT_INTERRUPTED, output
    assert "Traceback" not in output
    assert "Aborted" not in output
    assert not (tmp_path / "identity.json").exists()


def test_end_of_input_at_a_prompt_is_one_error_line(tmp_path: Path) -> None:
    process, controller = _prompting(tmp_path)
    os.write(controller, b"\x04")  # Ctrl-D on an empty line: the end of input
    code, output = _finish(process, controller)
    assert code == EXIT_ERROR, output
    assert "error: no input" in output
    assert "Aborted" not in output and "Traceback" not in output


def test_ctrl_c_while_waiting_for_a_server_exits_130(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        process = subprocess.Popen(
            [ZGRID, "chain", "status", "--ledger", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(tmp_path),
        )
        server.settimeout(30)
        connection, _ = server.accept()  # the command now waits for an answer that never comes
        with connection:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert b"Traceback" not in stderr


def test_a_zgrid_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_zgrid("identity", "show", home=tmp_path)
    assert result.returncode == EXIT_ERROR
    assert result.stderr.startswith("error: no identity in ")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["identity", "show", "--no-such-option"],
        ["deployment", "sign", "x.json"],  # --twin-id is required
        ["chain", "run", "--data", "x", "--listen", "nowhere"],
    ],
)
def test_wrong_usage_exits_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == EXIT_USAGE
    stderr = capsys.readouterr().err
    assert "Usage: zgrid" in stderr and "Error:" in stderr
    assert "Traceback" not in stderr


def test_error_text_is_one_line() -> None:
    assert one_line("cannot do it:\n  first reason\n\n  second reason\n") == (
        "cannot do it:; first reason; second reason"
    )


def test_emoji_codes_in_user_text_stay_literal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / ":smile: [bold]x[/bold]"
    assert main(["--home", str(missing), "identity", "show"]) == EXIT_ERROR
    assert f"no identity in {missing}" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "notaurl", "ftp://x"])
@pytest.mark.parametrize("command", [["chain", "status"], ["deployment", "check", "README.md"]])
def test_a_malformed_ledger_url_is_wrong_usage(
    url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--ledger", url]) == EXIT_USAGE
    stderr = capsys.readouterr().err
    assert "--ledger" in stderr and url in stderr
    assert "Traceback" not in stderr
