"""`zgrid chain run` that cannot start says why in one line; connections it serves are bounded."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chain.conftest import LedgerProcess
from tests.processes import free_port, run_zgrid
from zgrid.chain import init_dev_chain


def _refused_start(data: Path, listen: str) -> str:
    result = run_zgrid("chain", "run", "--data", str(data), "--listen", listen, timeout=30)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_port_in_use(tmp_path: Path) -> None:
    init_dev_chain(tmp_path / "chain")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refused_start(tmp_path / "chain", f"127.0.0.1:{port}")
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line


def test_an_address_not_on_this_machine(tmp_path: Path) -> None:
    init_dev_chain(tmp_path / "chain")
    line = _refused_start(tmp_path / "chain", f"203.0.113.9:{free_port()}")
    assert "cannot listen on 203.0.113.9" in line


def test_no_chain_in_the_data_dir(tmp_path: Path) -> None:
    line = _refused_start(tmp_path / "nothing", f"127.0.0.1:{free_port()}")
    assert "no genesis.json" in line


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    _refused_start(tmp_path / "file", f"127.0.0.1:{free_port()}")


def test_a_damaged_genesis(tmp_path: Path) -> None:
    init_dev_chain(tmp_path / "chain")
    (tmp_path / "chain" / "genesis.json").write_text("{not json")
    line = _refused_start(tmp_path / "chain", f"127.0.0.1:{free_port()}")
    assert "genesis.json" in line


def test_a_block_store_that_cannot_be_written(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    (data / "chain.sqlite").mkdir()  # in the way even for root, who ignores file modes
    line = _refused_start(data, f"127.0.0.1:{free_port()}")
    assert "block store" in line


@pytest.fixture
def guarded_ledger(tmp_path: Path) -> Iterator[LedgerProcess]:
    data = tmp_path / "chain"
    init_dev_chain(data)
    process = LedgerProcess(data, extra=("--header-timeout", "1", "--max-connections", "40"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_and_slowloris_connections_are_closed(guarded_ledger: LedgerProcess) -> None:
    idle = socket.create_connection(("127.0.0.1", guarded_ledger.port))
    slow = socket.create_connection(("127.0.0.1", guarded_ledger.port))
    started = time.monotonic()
    slow.sendall(b"GET /chain/head HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(6):  # a header byte now and then never finishes the request
            time.sleep(0.3)
            try:
                slow.sendall(b"X")
            except OSError:
                break
        assert _closed_within(slow, 3), "a slowloris connection was kept open"
        assert _closed_within(idle, 3), "an idle connection was kept open"
        assert time.monotonic() - started < 6
        assert httpx.get(f"{guarded_ledger.url}/chain/head", timeout=5).status_code == 200
    finally:
        idle.close()
        slow.close()


def test_connections_beyond_the_cap_are_refused(guarded_ledger: LedgerProcess) -> None:
    held = [socket.create_connection(("127.0.0.1", guarded_ledger.port)) for _ in range(45)]
    try:
        time.sleep(0.2)
        refused = httpx.get(f"{guarded_ledger.url}/chain/head", timeout=5)
        assert refused.status_code == 503
    finally:
        for sock in held:
            sock.close()
    # Once the idle ones are gone the ledger answers again.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx.get(f"{guarded_ledger.url}/chain/head", timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the ledger did not answer again after the connections closed")
