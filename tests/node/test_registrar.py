"""The node's twin and record on a real ledger, and its uptime reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import ClientFactory, LedgerProcess, SigningClient, running_ledger
from tests.factories import join_token
from zgrid.chain import UNITS_PER_TOKEN, ChainClient
from zgrid.chain.records import Interface, Location
from zgrid.node.errors import NodeConfigError
from zgrid.node.keys import identity_dir, load_or_create_node_identity
from zgrid.node.registrar import Registration, ensure_registered, read_uptime, report_uptime
from zgrid.types import GIB, Capacity

CAPACITY = Capacity(cru=2, mru=4 * GIB, sru=50 * GIB)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("ledger")) as process:
        yield process


@pytest.fixture
def clients(ledger: LedgerProcess) -> Iterator[ClientFactory]:
    factory = ClientFactory(ledger.url)
    yield factory
    factory.close()


def _farm(clients: ClientFactory) -> tuple[SigningClient, int]:
    farmer = clients(5)
    farmer.create_twin()
    return farmer, farmer.create_farm(f"farm-{secrets.token_hex(4)}")


@contextlib.asynccontextmanager
async def _node_chain(url: str, data: Path, funds: int = 1) -> AsyncIterator[ChainClient]:
    """A client signing with the node's own key, its account given ``funds`` tokens."""
    async with ChainClient(url, identity=load_or_create_node_identity(data)) as chain:
        if funds:
            await chain.faucet(funds * UNITS_PER_TOKEN)
        yield chain


async def _nonce(chain: ChainClient) -> int:
    assert chain.identity is not None
    return int((await chain.account(chain.identity.address))["nonce"])


def test_a_first_start_registers_and_a_second_changes_nothing(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    farmer, farm_id = _farm(clients)
    token = join_token(farmer, farm_id)
    location = Location(country="BE", city="Ghent")
    interfaces = [Interface(name="eth0", ips=["192.0.2.5/24"])]

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path) as chain:
            first = await ensure_registered(
                chain,
                farm_id=farm_id,
                resources=CAPACITY,
                join_token=token,
                location=location,
                interfaces=interfaces,
            )
            assert chain.identity is not None
            twin = await chain.twin_of(chain.identity.address)
            assert twin is not None and twin["id"] == first.twin_id
            node = await chain.node(first.node_id)
            assert (node["farm_id"], node["twin_id"]) == (farm_id, first.twin_id)
            assert node["resources"] == {"cru": 2, "mru": 4 * GIB, "sru": 50 * GIB, "hru": 0}
            assert node["location"]["city"] == "Ghent"
            assert node["interfaces"][0]["ips"] == ["192.0.2.5/24"]

            # Started again with what the record says: not one transaction.
            before = await _nonce(chain)
            again = await ensure_registered(
                chain, farm_id=farm_id, resources=CAPACITY, join_token=None
            )
            assert again == first
            assert await _nonce(chain) == before

    asyncio.run(scenario())


def test_changed_capacity_updates_the_record_and_keeps_the_rest(
    ledger: LedgerProcess,
    clients: ClientFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    farmer, farm_id = _farm(clients)

    async def scenario() -> Registration:
        async with _node_chain(ledger.url, tmp_path) as chain:
            first = await ensure_registered(
                chain,
                farm_id=farm_id,
                resources=CAPACITY,
                join_token=join_token(farmer, farm_id),
                location=Location(country="BE"),
            )
            before = await _nonce(chain)
            bigger = Capacity(cru=4, mru=8 * GIB, sru=50 * GIB, hru=GIB)
            again = await ensure_registered(
                chain, farm_id=farm_id, resources=bigger, join_token=None
            )
            assert again == first
            assert await _nonce(chain) == before + 1
            node = await chain.node(first.node_id)
            assert node["resources"] == {"cru": 4, "mru": 8 * GIB, "sru": 50 * GIB, "hru": GIB}
            assert node["location"]["country"] == "BE"

            # Declaring less than the contracts already hold is recorded, and said.
            deployer = clients(10)
            deployer.create_twin()
            deployer.create_node_contract(
                first.node_id, "ab" * 32, "c2VhbGVk", capacity={"cru": 3, "mru": GIB}
            )
            with caplog.at_level(logging.WARNING, logger="zgrid.node.registrar"):
                await ensure_registered(chain, farm_id=farm_id, resources=CAPACITY, join_token=None)
            assert f"node {first.node_id} now declares less cru than its contracts" in caplog.text
            assert (await chain.node(first.node_id))["free"]["cru"] == -1
            return first

    asyncio.run(scenario())


def test_moving_to_another_farm_needs_its_join_token(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    farmer, farm_id = _farm(clients)
    other_farmer, other_farm = _farm(clients)

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path) as chain:
            assert chain.identity is not None
            address = chain.identity.address
            first = await ensure_registered(
                chain, farm_id=farm_id, resources=CAPACITY, join_token=join_token(farmer, farm_id)
            )
            with pytest.raises(NodeConfigError) as caught:
                await ensure_registered(
                    chain, farm_id=other_farm, resources=CAPACITY, join_token=None
                )
            assert str(caught.value).startswith(
                f"moving node {first.node_id} from farm {farm_id} to farm {other_farm} needs "
                f"a join token from the farmer of farm {other_farm}: the farmer runs "
                f"`zgrid farm join-token {other_farm} --node {address}`"
            )
            # A token of the old farm is not good for the new one: the ledger's words.
            with pytest.raises(
                NodeConfigError, match=f"is for farm {farm_id}, not farm {other_farm}"
            ):
                await ensure_registered(
                    chain,
                    farm_id=other_farm,
                    resources=CAPACITY,
                    join_token=join_token(farmer, farm_id),
                )
            moved = await ensure_registered(
                chain,
                farm_id=other_farm,
                resources=CAPACITY,
                join_token=join_token(other_farmer, other_farm),
            )
            assert moved == first
            assert (await chain.node(first.node_id))["farm_id"] == other_farm

    asyncio.run(scenario())


def test_without_a_join_token_the_farmer_command_is_named(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    _, farm_id = _farm(clients)

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path) as chain:
            assert chain.identity is not None
            address = chain.identity.address
            with pytest.raises(NodeConfigError) as caught:
                await ensure_registered(chain, farm_id=farm_id, resources=CAPACITY, join_token=None)
            assert str(caught.value) == (
                f"registering this node in farm {farm_id} needs a join token from the farmer "
                f"of farm {farm_id}: the farmer runs `zgrid farm join-token {farm_id} --node "
                f"{address}` and the node is started with the token it prints (--join-token)"
            )
            assert await chain.query("nodes", farm_id=farm_id) == {
                "items": [],
                "total": 0,
                "page": 1,
                "size": 50,
            }

    asyncio.run(scenario())


def test_an_unfunded_account_is_named_with_the_command_that_pays_it(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    farmer, farm_id = _farm(clients)

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path, funds=0) as chain:
            assert chain.identity is not None
            address = chain.identity.address
            with pytest.raises(NodeConfigError) as caught:
                await ensure_registered(
                    chain,
                    farm_id=farm_id,
                    resources=CAPACITY,
                    join_token=join_token(farmer, farm_id),
                    identity_dir=identity_dir(tmp_path),
                )
            message = str(caught.value)
            assert message.startswith(
                f"the node's account {address} cannot pay the ledger's transaction fee ("
            )
            assert message.endswith(
                f"send it tokens with `zgrid account transfer {address} 10`; on a dev chain, "
                f"`zgrid --home {identity_dir(tmp_path)} account faucet`, then start the node again"
            )
            assert await chain.twin_of(address) is None

    asyncio.run(scenario())


def test_an_unknown_farm_is_the_ledger_refusal(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    farmer, farm_id = _farm(clients)

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path) as chain:
            with pytest.raises(NodeConfigError) as caught:
                await ensure_registered(
                    chain,
                    farm_id=farm_id + 1000,
                    resources=CAPACITY,
                    join_token=join_token(farmer, farm_id),
                )
            assert str(caught.value) == (
                f"the ledger refused to register the node in farm {farm_id + 1000}: "
                f"no farm {farm_id + 1000}"
            )

    asyncio.run(scenario())


def test_uptime_is_read_from_the_kernel() -> None:
    seconds = read_uptime()
    assert 0 < seconds <= time.time()


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_uptime_is_reported_every_interval_of_ledger_time_through_an_outage(
    ledger: LedgerProcess, clients: ClientFactory, tmp_path: Path
) -> None:
    farmer, farm_id = _farm(clients)
    token = join_token(farmer, farm_id)

    async def scenario() -> None:
        async with _node_chain(ledger.url, tmp_path) as chain:
            registration = await ensure_registered(
                chain, farm_id=farm_id, resources=CAPACITY, join_token=token
            )

            async def last_report() -> int:
                return int((await chain.node(registration.node_id))["last_uptime_report"])

            # Uptime grows as ledger time is moved on below, as a node's would.
            moved = [0]

            # The node's own clock is an hour off: reports still land (ledger time).
            loop = asyncio.create_task(
                report_uptime(
                    chain,
                    interval=2,
                    poll=0.2,
                    uptime=lambda: 4321 + moved[0],
                    clock=lambda: time.time() + 3600,
                )
            )

            # The ledger takes a report no sooner than 1200 s after the last: ledger time
            # is moved on (a dev chain's call) instead of waited for.
            async def advance() -> None:
                await asyncio.to_thread(farmer.advance_time, 1300)
                moved[0] += 1300

            try:
                await _until(lambda: _after(last_report, 0))
                first = await last_report()
                assert (await chain.node(registration.node_id))["uptime"] == 4321
                await advance()
                await _until(lambda: _after(last_report, first + 1))
                second = await last_report()
                assert second - first >= 1300

                # The module's ledger goes away for a while (and comes back for the
                # tests after this one whatever happens).
                try:
                    await asyncio.to_thread(ledger.stop)
                    await asyncio.sleep(1.5)
                    assert not loop.done()
                finally:
                    await asyncio.to_thread(ledger.start)
                await advance()
                await _until(lambda: _after(last_report, second))
                assert not loop.done()
            finally:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop

    asyncio.run(scenario())


def test_the_uptime_loop_outlives_a_refusal(
    ledger: LedgerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        # An account with no node: every report is refused, and the loop goes on.
        async with _node_chain(ledger.url, tmp_path) as chain:
            loop = asyncio.create_task(report_uptime(chain, interval=1, poll=0.2))
            await asyncio.sleep(1.5)
            assert not loop.done()
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    with caplog.at_level(logging.ERROR, logger="zgrid.node.registrar"):
        asyncio.run(scenario())
    assert "uptime report refused by the ledger: account" in caplog.text
    assert caplog.text.count("uptime report refused") >= 2


async def _after(value: Any, than: int) -> bool:
    try:
        return bool(await value() > than)
    except Exception:  # the ledger is restarting
        return False
