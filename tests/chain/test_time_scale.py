"""Dev chains can run ledger time faster than the clock; production chains refuse to."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from zgrid.chain import GenesisError, Ledger, init_dev_chain, verify_chain


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ledger_time_runs_time_scale_times_faster_and_verifies(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    clock = Clock(2_000_000_000.0)

    async def scenario() -> list[int]:
        ledger = Ledger.open(data, clock=clock, time_scale=3600)
        stamps = []
        for _ in range(3):
            clock.now += 2  # two seconds of the machine's clock: two hours of ledger time
            stamps.append((await ledger.produce_block()).header.timestamp)
        ledger.close()
        return stamps

    first, second, third = asyncio.run(scenario())
    assert second - first == 7200 and third - second == 7200
    assert verify_chain(data).height == 3

    # Started again (at 1x), its time goes on from the chain's, never back.
    async def again() -> int:
        ledger = Ledger.open(data, clock=clock)
        clock.now += 1
        stamp = (await ledger.produce_block()).header.timestamp
        ledger.close()
        return stamp

    assert asyncio.run(again()) >= third


def test_a_chain_without_a_faucet_refuses_a_time_scale(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    init_dev_chain(data)
    genesis = data / "genesis.json"
    document = json.loads(genesis.read_text())
    document["faucet"] = None
    genesis.write_text(json.dumps(document))
    with pytest.raises(GenesisError, match="only on dev chains"):
        Ledger.open(data, time_scale=60)
    with pytest.raises(GenesisError, match="between 1 and 1000000"):
        init_dev_chain(tmp_path / "dev")
        Ledger.open(tmp_path / "dev", time_scale=0.5)
