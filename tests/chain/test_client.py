"""ChainClient and SyncChainClient: one behaviour in two forms, and streams that say when they fail."""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time

import pytest

from tests.chain.conftest import LedgerProcess
from tests.processes import free_port
from zgrid.chain import UNITS_PER_TOKEN, ChainClient, LedgerUnavailable, NotFound, SyncChainClient
from zgrid.identity import Identity


def _public_async_methods() -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(ChainClient)
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    )


@pytest.mark.parametrize("name", _public_async_methods())
def test_every_coroutine_has_a_blocking_twin(name: str) -> None:
    blocking = getattr(SyncChainClient, name, None)
    assert blocking is not None, f"SyncChainClient has no {name}"
    assert not inspect.iscoroutinefunction(blocking)
    expected = inspect.signature(getattr(ChainClient, name)).parameters
    actual = inspect.signature(blocking).parameters
    assert [(p.name, p.kind, p.default) for p in actual.values()] == [
        (p.name, p.kind, p.default) for p in expected.values()
    ]


def test_events_give_up_after_a_bounded_time(caplog: pytest.LogCaptureFixture) -> None:
    async def follow() -> None:
        async with ChainClient(f"http://127.0.0.1:{free_port()}") as client:
            async for _ in client.events(0, reconnect_delay=0.1, give_up_after=1.5):
                pass

    started = time.monotonic()
    with pytest.raises(LedgerUnavailable, match=r"could not be reached for 1\.5 s"):
        asyncio.run(asyncio.wait_for(follow(), 20))
    assert time.monotonic() - started < 10


def test_a_broken_stream_is_logged_then_given_up(
    ledger: LedgerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    with SyncChainClient(ledger.url, identity=Identity(secrets.token_bytes(32))) as client:
        client.faucet(UNITS_PER_TOKEN)
        events = client.events(0, reconnect_delay=0.1, give_up_after=2)
        first = next(events)
        assert first.height >= 0
        ledger.stop()
        caplog.set_level(logging.WARNING, logger="zgrid.chain.client")
        with pytest.raises(LedgerUnavailable, match="could not be reached"):
            for _ in events:
                pass
    assert any("reconnecting after" in record.getMessage() for record in caplog.records)


def test_closing_does_not_wait_for_a_call_an_interrupt_left_running() -> None:
    import socket  # noqa: PLC0415
    import threading  # noqa: PLC0415

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = SyncChainClient(f"http://127.0.0.1:{server.getsockname()[1]}")
        # What Ctrl-C leaves when it lands between scheduling a call and waiting for it: a
        # request in the portal that nobody cancels, to a server that never answers.
        client._portal.start_task_soon(client.target.head)
        connection, _ = server.accept()
        closed = threading.Event()

        def close() -> None:
            client.close()
            closed.set()

        threading.Thread(target=close, daemon=True).start()
        try:
            assert closed.wait(15), "close() waited for the abandoned request"
        finally:
            connection.close()


def test_the_economy_bills_discounts_and_rewards_as_the_api_serves_them(
    ledger: LedgerProcess,
) -> None:
    with SyncChainClient(ledger.url, identity=Identity(secrets.token_bytes(32))) as client:
        client.faucet(100 * UNITS_PER_TOKEN)
        twin_id = client.create_twin()
        farm_id = client.create_farm("reading-farm")
        created = client.submit("contracts.create_name_contract", {"name": "billed"})
        contract_id = created["result"]["contract_id"]
        economy = client.economy()
        genesis = client.genesis()
        assert economy["token_price"] == genesis["token_price"]
        assert economy["supply"]["genesis"] == sum(genesis["balances"].values())
        assert economy["billing_period"] == 3600

        before = client.head()["timestamp"]
        moved = client.advance_time(3 * 3600)
        assert moved["result"] == {"seconds": 3 * 3600, "from_block": moved["height"] + 1}
        deadline = time.monotonic() + 30
        while (
            client.contract(contract_id)["bills"] < 1 or client.head()["timestamp"] < before + 10800
        ):
            assert time.monotonic() < deadline, "no bill three hours of ledger time later"
            time.sleep(0.05)
        client.advance_time(2 * 3600)  # an hour and the minute a bill may wait for its bucket
        while client.contract(contract_id)["bills"] < 2:
            assert time.monotonic() < deadline, "no second bill two hours later"
            time.sleep(0.05)

        bills = client.bills(contract_id)
        assert (bills["total"], bills["page"], bills["size"]) == (2, 1, 50)
        first, second = bills["items"]
        assert first["period_end"] - first["period_start"] >= 3 * 3600
        assert client.bills(contract_id, page=2, size=1)["items"] == [second]
        assert client.bills(contract_id, 1, 1)["items"] == [first]

        discount = client.discount(twin_id)
        assert discount["twin_id"] == twin_id
        assert discount["spend_usd_per_hour"] == genesis["price_policies"][0]["unique_name"]
        assert discount["balance"] == client.account(client.identity.address)["free"]  # type: ignore[union-attr]

        assert client.farm_rewards(farm_id) == {"items": [], "total": 0, "page": 1, "size": 50}
        assert client.farm_rewards(farm_id, node_id=7, page=2, size=5)["page"] == 2
        for read, what in (
            (lambda: client.bills(999), "no contract 999"),
            (lambda: client.discount(999), "no twin 999"),
            (lambda: client.farm_rewards(999), "no farm 999"),
        ):
            with pytest.raises(NotFound, match=what):
                read()
