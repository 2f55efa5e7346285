"""The explorer's fixtures: a ledger process serving the story's two days of a grid, and
explorer processes (`zgrid explorer run`) indexing it.

A plugin of the whole suite (tests/conftest.py), so the story, its ledger and its explorer
are made once per test process for every module that reads them (none writes to them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chain.conftest import LedgerProcess
from tests.explorer.story import Story, write_story
from tests.processes import ZGRID, ServerProcess, free_port


class ExplorerProcess(ServerProcess):
    """`zgrid explorer run` in a subprocess; can be killed with -9 and started again."""

    name = "explorer"

    def __init__(self, ledger: str, db: str, log: Path, *, extra: tuple[str, ...] = ()) -> None:
        self.ledger = ledger
        self.db = db
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(log)

    def argv(self) -> list[str]:
        return [
            ZGRID,
            "explorer",
            "run",
            "--ledger",
            self.ledger,
            "--db",
            self.db,
            "--listen",
            f"127.0.0.1:{self.port}",
            *self.extra,
        ]

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def indexer(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/indexer", timeout=5).json()
        return answer

    def wait_for_height(self, height: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.indexer()
            if status["height"] >= height:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the explorer reached {status} within {timeout} s, not {height}"
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    return write_story(tmp_path_factory.mktemp("story") / "chain")


@pytest.fixture(scope="session")
def story_ledger(story: Story) -> Iterator[LedgerProcess]:
    """The story's ledger, served and producing (empty) blocks from where the story ends."""
    process = LedgerProcess(story.data, block_time=0.5)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def story_explorer(
    story: Story, story_ledger: LedgerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExplorerProcess]:
    """An explorer that indexed the whole story into SQLite and follows the ledger on."""
    directory = tmp_path_factory.mktemp("explorer")
    process = ExplorerProcess(
        story_ledger.url, f"sqlite:///{directory / 'explorer.db'}", directory / "explorer.log"
    )
    process.start()
    try:
        process.wait_for_height(story.height)
        yield process
    finally:
        process.stop()
