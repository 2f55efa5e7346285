"""The node's traffic reports on a real ledger: bytes since the last report per contract,
counters kept in the node's state across restarts, links made again counted from zero."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.conftest import require_tool
from tests.factories import join_token
from tests.processes import free_port
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, LedgerUnavailable, SyncChainClient
from zgrid.identity import Identity
from zgrid.node.keys import load_or_create_node_identity
from zgrid.node.registrar import ensure_registered
from zgrid.node.state import LocalState
from zgrid.node.traffic import (
    Counter,
    TrafficBook,
    read_counters,
    report_once,
    report_traffic,
    traffic_since,
)
from zgrid.types import GIB, Capacity

HASH = "ab" * 32
SEALED = base64.b64encode(b"sealed deployment bytes").decode()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("ledger")) as process:
        yield process


def _funded(url: str, tokens: int = 100) -> SyncChainClient:
    client = SyncChainClient(url, identity=Identity(secrets.token_bytes(32)))
    client.faucet(tokens * UNITS_PER_TOKEN)
    return client


def _contracts(
    ledger: LedgerProcess, data: Path, count: int, *, deployer: SyncChainClient | None = None
) -> list[int]:
    """A node registered with the key under ``data`` and ``count`` contracts on it (of
    ``deployer``, by default a new twin's)."""
    farmer = _funded(ledger.url)
    own = deployer is None
    deployer = deployer or _funded(ledger.url)
    try:
        farmer.create_twin()
        farm_id = farmer.create_farm(f"farm-{secrets.token_hex(4)}")
        token = join_token(farmer, farm_id)

        async def register() -> int:
            identity = load_or_create_node_identity(data)
            async with ChainClient(ledger.url, identity=identity) as chain:
                await chain.faucet(10 * UNITS_PER_TOKEN)
                registration = await ensure_registered(
                    chain,
                    farm_id=farm_id,
                    resources=Capacity(cru=4, mru=8 * GIB, sru=50 * GIB),
                    join_token=token,
                )
            return registration.node_id

        node_id = asyncio.run(register())
        deployer.create_twin()
        return [
            int(
                deployer.submit(
                    "contracts.create_node_contract",
                    {
                        "node_id": node_id,
                        "deployment_hash": HASH,
                        "sealed_deployment": SEALED,
                        "capacity": {"cru": 1, "mru": GIB, "sru": 0, "hru": 0},
                    },
                )["result"]["contract_id"]
            )
            for _ in range(count)
        ]
    finally:
        farmer.close()
        if own:
            deployer.close()


async def _traffic(chain: ChainClient, contract_id: int) -> int:
    return int((await chain.contract(contract_id))["traffic"])


def test_traffic_is_the_difference_per_contract_and_a_remade_link_counts_from_zero() -> None:
    links = {"1-7-web": "zv1", "1-7-db": "zv2", "1-8-web": "zv3", "1-9-gone": "zv4"}
    last = {"zv1": Counter(10, 1000), "zv2": Counter(11, 500), "zv3": Counter(12, 900)}
    now = {
        "zv1": Counter(10, 1500),  # +500
        "zv2": Counter(11, 700),  # +200
        "zv3": Counter(13, 300),  # another link under the same name: all 300 are new
    }
    assert traffic_since(last, now, links) == {7: 700, 8: 300}
    # A counter that went down (the link was made again with the same index) starts at 0.
    assert traffic_since({"zv1": Counter(10, 1000)}, {"zv1": Counter(10, 40)}, links) == {7: 40}
    # A link never seen before counts whole.
    assert traffic_since({}, {"zv1": Counter(10, 64)}, {"1-7-web": "zv1"}) == {7: 64}


def test_the_loopback_counters_are_read_from_the_kernel() -> None:
    require_tool("ip")
    counters = asyncio.run(read_counters())
    assert counters["lo"].index == 1
    assert counters["lo"].bytes >= 0


def test_reports_go_to_the_ledger_once_even_across_a_restart(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    web, db = _contracts(ledger, tmp_path, 2)
    links = {f"1-{web}-web": "zv1", f"1-{db}-db": "zv2"}

    async def scenario() -> None:
        identity = load_or_create_node_identity(tmp_path)
        async with ChainClient(ledger.url, identity=identity) as chain:
            state = LocalState(tmp_path / "state.db")
            first = {"zv1": Counter(5, 4000), "zv2": Counter(6, 0)}
            assert await report_once(chain, TrafficBook(state), links, first) == {web: 4000}
            state.close()

            # The node restarts: the counters of its last report are in its state.
            state = LocalState(tmp_path / "state.db")
            book = TrafficBook(state)
            assert await report_once(chain, book, links, first) == {}
            second = {"zv1": Counter(5, 4500), "zv2": Counter(6, 250)}
            assert await report_once(chain, book, links, second) == {web: 500, db: 250}
            assert await _traffic(chain, web) == 4500
            assert await _traffic(chain, db) == 250

            # The machine's link was made again (another ifindex): counted from zero.
            third = {"zv1": Counter(9, 100), "zv2": Counter(6, 250)}
            assert await report_once(chain, book, links, third) == {web: 100}
            assert await _traffic(chain, web) == 4600
            state.close()

    asyncio.run(scenario())


def test_a_report_that_did_not_arrive_goes_with_the_next_one(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    (contract,) = _contracts(ledger, tmp_path, 1)
    links = {f"1-{contract}-web": "zv1"}
    identity = load_or_create_node_identity(tmp_path)

    async def scenario() -> None:
        state = LocalState(tmp_path / "state.db")
        book = TrafficBook(state)
        nowhere = f"http://127.0.0.1:{free_port()}"
        async with ChainClient(nowhere, identity=identity) as down:
            with pytest.raises(LedgerUnavailable):
                await report_once(down, book, links, {"zv1": Counter(3, 700)})
        async with ChainClient(ledger.url, identity=identity) as chain:
            assert await report_once(chain, book, links, {"zv1": Counter(3, 900)}) == {
                contract: 900
            }
            assert await _traffic(chain, contract) == 900
        state.close()

    asyncio.run(scenario())


def test_a_deleted_contract_is_not_asked_again(
    ledger: LedgerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deployer = _funded(ledger.url)
    try:
        (contract,) = _contracts(ledger, tmp_path, 1, deployer=deployer)
        deployer.cancel_contract(contract)
    finally:
        deployer.close()
    links = {f"1-{contract}-web": "zv1"}
    identity = load_or_create_node_identity(tmp_path)

    async def scenario() -> None:
        state = LocalState(tmp_path / "state.db")
        book = TrafficBook(state)
        async with ChainClient(ledger.url, identity=identity) as chain:
            with caplog.at_level(logging.WARNING, logger="zgrid.node.traffic"):
                assert await report_once(chain, book, links, {"zv1": Counter(3, 700)}) == {}
                assert [r.getMessage() for r in caplog.records] == [
                    f"traffic of contract {contract} refused by the ledger: "
                    f"contract {contract} is deleted"
                ]
                caplog.clear()
                # Its bytes are settled: nothing is sent again for them.
                assert await report_once(chain, book, links, {"zv1": Counter(3, 700)}) == {}
                assert caplog.records == []
        state.close()

    asyncio.run(scenario())


def test_a_report_in_flight_when_the_node_stopped_counts_once(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    landed, lost = _contracts(ledger, tmp_path, 2)
    links = {f"1-{landed}-web": "zv1", f"1-{lost}-web": "zv2"}
    identity = load_or_create_node_identity(tmp_path)
    counters = {"zv1": Counter(3, 800), "zv2": Counter(4, 300)}

    async def scenario() -> None:
        async with ChainClient(ledger.url, identity=identity) as chain:
            state = LocalState(tmp_path / "state.db")
            book = TrafficBook(state)
            # The node sent this report and stopped before it heard the answer.
            tx = await chain.sign("contracts.report_traffic", {"contract_id": landed, "bytes": 800})
            book.begin(tx.hash, {"zv1": counters["zv1"]})
            await chain.submit_signed(tx)
            state.close()
            state = LocalState(tmp_path / "state.db")
            book = TrafficBook(state)
            assert await report_once(chain, book, links, counters) == {lost: 300}
            assert await _traffic(chain, landed) == 800
            assert book.pending() is None

            # This one it signed but never sent: its bytes go with the next report.
            tx = await chain.sign("contracts.report_traffic", {"contract_id": lost, "bytes": 50})
            book.begin(tx.hash, {"zv2": Counter(4, 350)})
            chain.forget_nonce()
            later = {"zv1": Counter(3, 800), "zv2": Counter(4, 350)}
            assert await report_once(chain, book, links, later) == {lost: 50}
            assert await _traffic(chain, lost) == 350
            state.close()

    asyncio.run(scenario())


def test_the_loop_reports_every_interval_of_ledger_time(
    ledger: LedgerProcess, tmp_path: Path
) -> None:
    (contract,) = _contracts(ledger, tmp_path, 1)
    links = {f"1-{contract}-web": "zv1"}
    identity = load_or_create_node_identity(tmp_path)
    moved = {"bytes": 1000}

    async def counters() -> dict[str, Counter]:
        return {"zv1": Counter(2, moved["bytes"])}

    async def traffic_is(chain: ChainClient, expected: int) -> None:
        deadline = time.monotonic() + 20
        while await _traffic(chain, contract) != expected:
            assert time.monotonic() < deadline, f"traffic never reached {expected}"
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        state = LocalState(tmp_path / "state.db")
        async with ChainClient(ledger.url, identity=identity) as chain:
            loop = asyncio.create_task(
                report_traffic(
                    chain, state, lambda: links, interval=600, poll=0.1, counters=counters
                )
            )
            try:
                await traffic_is(chain, 1000)  # at start
                moved["bytes"] = 1600
                await asyncio.sleep(1.5)  # it polls, but the interval has not passed
                assert await _traffic(chain, contract) == 1000
                # Ten minutes of ledger time at once (its first bill is still an hour away).
                await chain.submit("dev.advance_time", {"seconds": 600})
                await traffic_is(chain, 1600)
            finally:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        state.close()

    asyncio.run(scenario())
