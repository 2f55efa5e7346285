"""Where the server listens: both address families by default, one error line when it cannot."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.processes import run_zgrid
from tests.zdb.conftest import ZdbProcess


class DefaultListen(ZdbProcess):
    """`zgrid zdb run` without --listen, as the README runs it."""

    def argv(self) -> list[str]:
        argv = super().argv()
        at = argv.index("--listen")
        return argv[:at] + argv[at + 2 :]


def _cli(host: str, port: int, *args: str) -> str:
    done = subprocess.run(
        [require_tool("redis-cli"), "-h", host, "-p", str(port), *args],
        capture_output=True,
        timeout=20,
        check=True,
    )
    return done.stdout.decode().strip()


def test_the_default_listens_on_ipv4_and_ipv6(tmp_path: Path) -> None:
    server = DefaultListen(tmp_path)
    server.start()
    try:
        assert _cli("127.0.0.1", server.port, "SET", "k", "v4") == "k"
        assert _cli("::1", server.port, "GET", "k") == "v4"
        assert _cli("::1", server.port, "PING") == "PONG"
        assert f"tcp://[::]:{server.port}" in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("listen", [None, "127.0.0.1"])
def test_a_port_in_use_is_one_error_line(tmp_path: Path, listen: str | None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        where = ["--listen", listen] if listen else []
        done = run_zgrid(
            "zdb", "run", "--data", str(tmp_path / "d"), "--index", str(tmp_path / "i"),
            "--port", str(port), *where, timeout=30,
        )  # fmt: skip
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot listen on "), lines
    assert f":{port}: Address already in use" in lines[0], lines
    assert not (tmp_path / "i").exists()  # nothing was loaded or created
