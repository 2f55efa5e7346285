"""Fixtures of the flist tests: a ledger with twins, and hub processes on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.chain.conftest import ClientFactory, LedgerProcess, running_ledger
from tests.processes import ZGRID, ServerProcess, free_port
from zgrid.identity import Identity


class HubProcess(ServerProcess):
    """``zgrid hub run`` on a port that stays the same across restarts, so clients can go on
    after a kill."""

    name = "hub"

    def __init__(
        self,
        data: Path,
        ledger_url: str,
        *,
        blocks: str | None = None,
        extra: tuple[str, ...] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.data = data
        self.ledger_url = ledger_url
        self.blocks = blocks
        self.extra = extra
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        super().__init__(data.parent / f"hub-{self.port}.log")

    def argv(self) -> list[str]:
        argv = [
            ZGRID,
            "hub",
            "run",
            "--data",
            str(self.data),
            "--listen",
            f"{self.host}:{self.port}",
            "--ledger",
            self.ledger_url,
            "--public-url",
            self.url,
        ]
        if self.blocks is not None:
            argv += ["--blocks", self.blocks]
        return [*argv, *self.extra]

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass(frozen=True)
class Twin:
    identity: Identity
    twin_id: int


@pytest.fixture(scope="module")
def hub_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("hub-ledger")) as process:
        yield process


@pytest.fixture(scope="module")
def new_twin(hub_ledger: LedgerProcess) -> Iterator[Callable[[], Twin]]:
    """Makes a funded account with a twin on the ledger."""
    factory = ClientFactory(hub_ledger.url)

    def make() -> Twin:
        client = factory()
        twin_id = client.create_twin()
        assert client.identity is not None
        return Twin(client.identity, twin_id)

    yield make
    factory.close()


@contextmanager
def running_hub(
    directory: Path, ledger_url: str, *, blocks: str | None = None, extra: tuple[str, ...] = ()
) -> Iterator[HubProcess]:
    process = HubProcess(directory / "hub", ledger_url, blocks=blocks, extra=extra)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, hub_ledger: LedgerProcess
) -> Iterator[HubProcess]:
    """One hub for a module's tests; each test publishes under twins of its own."""
    with running_hub(tmp_path_factory.mktemp("hub"), hub_ledger.url) as process:
        yield process
