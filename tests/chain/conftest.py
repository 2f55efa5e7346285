"""A real ledger process on a free port, and clients that sign as fresh identities."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ZGRID, ServerProcess, free_port
from zgrid.chain import (
    UNITS_PER_TOKEN,
    RejectCode,
    SyncChainClient,
    TransactionRejected,
    init_dev_chain,
)
from zgrid.identity import Identity

BLOCK_TIME = 0.2


class LedgerProcess(ServerProcess):
    """`zgrid chain run` in a subprocess; can be stopped, killed with -9 and restarted."""

    name = "ledger"

    def __init__(
        self,
        data: Path,
        block_time: float = BLOCK_TIME,
        extra: tuple[str, ...] = (),
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.data = data
        self.block_time = block_time
        self.extra = extra
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        super().__init__(data.parent / f"ledger-{self.port}.log")

    def argv(self) -> list[str]:
        return [
            ZGRID,
            "chain",
            "run",
            "--data",
            str(self.data),
            "--listen",
            f"{self.host}:{self.port}",
            "--block-time",
            str(self.block_time),
            *self.extra,
        ]

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/chain/head", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def running_ledger(directory: Path) -> Iterator[LedgerProcess]:
    data = directory / "chain"
    init_dev_chain(data)
    process = LedgerProcess(data)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerProcess]:
    """A ledger of this test's own."""
    with running_ledger(tmp_path) as process:
        yield process


@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    """One ledger for a module's tests that only add to it."""
    with running_ledger(tmp_path_factory.mktemp("ledger")) as process:
        yield process


class SigningClient(SyncChainClient):
    """A test's client: it always has an identity, and asks only for twins that exist."""

    @property
    def identity(self) -> Identity:
        identity = super().identity
        assert identity is not None
        return identity

    def twin_of(self, address: str) -> dict[str, Any]:
        found = super().twin_of(address)
        assert found is not None, f"no twin belongs to {address}"
        return found


class ClientFactory:
    """``clients(funds_tokens=100)``: a client signing as a new identity, funded by the faucet."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: list[SigningClient] = []

    def __call__(self, funds_tokens: int = 100, identity: Identity | None = None) -> SigningClient:
        client = SigningClient(self.url, identity=identity or Identity(secrets.token_bytes(32)))
        self._clients.append(client)
        if funds_tokens:
            client.faucet(funds_tokens * UNITS_PER_TOKEN)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def clients(ledger: LedgerProcess) -> Iterator[ClientFactory]:
    factory = ClientFactory(ledger.url)
    yield factory
    factory.close()


@pytest.fixture
def shared_clients(shared_ledger: LedgerProcess) -> Iterator[ClientFactory]:
    factory = ClientFactory(shared_ledger.url)
    yield factory
    factory.close()


def refused(code: RejectCode, call: Callable[[], object]) -> str:
    """Run ``call``, expect the ledger to refuse it with ``code``; return the refusal's text."""
    with pytest.raises(TransactionRejected) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value.message


SHM = Path("/dev/shm")


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory in memory (tmpfs) when the machine has one: thousands of blocks
    committed with fsync cost seconds on a disk and nothing there."""
    if not SHM.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="zgrid-test-", dir=SHM))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
