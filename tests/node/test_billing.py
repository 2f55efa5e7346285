"""Billing as a node lives it: a contract whose twin runs dry is frozen on the node through
its grace period, thawed by a top-up and, left unpaid for 14 days of ledger time, removed
without a trace; the traffic of a machine is reported and billed.

Ledger time is moved with the dev chain's ``dev.advance_time``, so days pass in a block.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.node.deployer import Twin, capacity_of, deployment_of, funded_twin, node_key, wait_result
from tests.node.grid import (
    Grid,
    NodeDaemon,
    kill_node_processes,
    module_grid,
    traces,
    unmount_under,
)
from tests.node.hosts import HostNetwork
from zgrid.chain import UNITS_PER_TOKEN, ChainClient
from zgrid.node.sealing import seal_deployment
from zgrid.types import (
    MIB,
    ComputeCapacity,
    Deployment,
    MachineNetwork,
    Workload,
    ZMachine,
    make_workload,
    sign_deployment,
)

PAGE = "paid for"
HOUR = 3600
GRACE = 14 * 24 * HOUR
FARM_IP, FARM_GATEWAY = "198.51.100.7/24", "198.51.100.1"
# A counter the machine moves five times a second: it stands still only while frozen.
TICKING = "(i=0; while true; do i=$((i+1)); echo $i > /tick; busybox sleep 0.2; done) & "
WEB = f"mkdir -p /www && echo {PAGE} > /www/index.html; "
SERVE = "exec busybox httpd -f -p [::]:80 -h /www"


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def node(grid: Grid) -> NodeDaemon:
    return grid.add_node("node1")


def _run(coroutine: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 240))


def _machine(grid: Grid, name: str, script: str) -> Workload:
    return make_workload(
        name,
        ZMachine(
            flist=grid.busybox_url,
            compute_capacity=ComputeCapacity(cpu=1, memory=256 * MIB),
            entrypoint=f"/bin/sh -c {shlex.quote(script)}",
            network=MachineNetwork(planetary=True),
        ),
    )


async def _create(twin: Twin, node_id: int, deployment: Deployment, *, public_ips: int) -> int:
    """A node contract for ``deployment`` holding ``public_ips`` of the farm's IPs."""
    signed = sign_deployment(deployment, twin.twin_id, twin.identity)
    result = await twin.chain.submit(
        "contracts.create_node_contract",
        {
            "node_id": node_id,
            "deployment_hash": signed.hash_hex(),
            "sealed_deployment": seal_deployment(signed, await node_key(twin.chain, node_id)),
            "capacity": capacity_of(signed),
            "public_ips": public_ips,
        },
    )
    return int(result["result"]["contract_id"])


async def _advance(chain: ChainClient, seconds: int) -> None:
    await chain.submit("dev.advance_time", {"seconds": seconds})


async def _until(
    what: str, check: Callable[[], Awaitable[Any]], *, timeout: float = 30, where: str = ""
) -> Any:
    """Until ``check()`` returns something true (returned); fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s{where}")


def _container(node: NodeDaemon, workload_id: str) -> dict[str, Any]:
    """runc's own word on the container: its status and pid."""
    done = subprocess.run(
        ["runc", "--root", str(node.data / "runtime" / "runc"), "state", workload_id],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _frozen(pid: int) -> bool:
    """Whether the kernel's freezer holds the cgroup of ``pid`` (cgroup v1 or v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            state = Path(f"/sys/fs/cgroup/freezer{path}/freezer.state").read_text().strip()
            return state == "FROZEN"
    unified = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
    events = Path(f"/sys/fs/cgroup{unified}/cgroup.events").read_text()
    return "frozen 1" in events.splitlines()


def _tick(node: NodeDaemon, workload_id: str) -> str:
    try:
        return (node.data / "machines" / workload_id / "rootfs" / "tick").read_text().strip()
    except OSError:
        return ""


async def _ticking(node: NodeDaemon, workload_id: str) -> bool:
    before = _tick(node, workload_id)
    await asyncio.sleep(1.0)
    return _tick(node, workload_id) != before


async def _answers(grid: Grid, address: str) -> bool:
    done = await asyncio.to_thread(grid.client.http_get, f"http://[{address}]/", timeout=3)
    return done.returncode == 0 and PAGE in done.stdout


async def _state_is(chain: ChainClient, contract_id: int, state: str) -> dict[str, Any] | None:
    contract = await chain.contract(contract_id)
    return contract if contract["state"] == state else None


def test_a_dry_twin_is_frozen_thawed_by_a_top_up_and_removed_after_its_grace(
    grid: Grid, node: NodeDaemon
) -> None:
    where = f"; node log: {node.log}"
    grid.farmer.add_farm_ip(grid.farm_id, FARM_IP, FARM_GATEWAY)

    async def scenario() -> None:
        before = traces(node).without_images()
        # Enough for the fees and the contract's first hour of its public IP, little more.
        bob = await funded_twin(grid.ledger.url, UNITS_PER_TOKEN // 10)
        clock = await funded_twin(grid.ledger.url, 10 * UNITS_PER_TOKEN)
        deployment = deployment_of(bob.twin_id, [_machine(grid, "web", WEB + TICKING + SERVE)])
        contract_id = await _create(bob, node.node_id, deployment, public_ips=1)
        report = await wait_result(bob, contract_id, where=where)
        assert report.state == "ok", report
        web = report.workload("web")
        assert web is not None
        address = web.result.data["planetary_ip"]
        workload_id = f"{bob.twin_id}-{contract_id}-web"
        await _until("the first answer", lambda: _answers(grid, address), where=where)
        contract = await bob.chain.contract(contract_id)
        assert [ip["ip"] for ip in contract["public_ips"]] == [FARM_IP]

        # Ten hours later the twin cannot pay its bill: grace period, the node freezes it.
        await _advance(clock.chain, 10 * HOUR)
        grace = await _until(
            "the grace period", lambda: _state_is(bob.chain, contract_id, "grace_period")
        )
        assert grace["owed"] > 0

        async def frozen() -> bool:
            state = _container(node, workload_id)
            return state.get("status") == "paused" and _frozen(int(state["pid"]))

        await _until("the container's freeze", frozen, where=where)
        assert not await _ticking(node, workload_id)
        assert (await wait_result(bob, contract_id, states=frozenset({"paused"}))).state == "paused"

        # A top-up pays the debt at once; the node thaws the machine, which serves again.
        await bob.chain.faucet(int(grace["owed"]) + UNITS_PER_TOKEN // 100)
        await _until("the end of the grace", lambda: _state_is(bob.chain, contract_id, "created"))

        async def thawed() -> bool:
            state = _container(node, workload_id)
            return state.get("status") == "running" and not _frozen(int(state["pid"]))

        await _until("the container's thaw", thawed, where=where)
        await _until("the machine's counter moving again", lambda: _ticking(node, workload_id))
        await _until("an answer after the thaw", lambda: _answers(grid, address), where=where)

        # Dry again, and left so for 14 days: deleted, its IP released, nothing left.
        await _advance(clock.chain, 10 * HOUR)
        await _until("the second grace", lambda: _state_is(bob.chain, contract_id, "grace_period"))
        await _until("the second freeze", frozen, where=where)

        # A reboot in the grace period: the node makes the machine again, frozen.
        node.stop()
        kill_node_processes(node)
        unmount_under(node.data)
        node.start()
        await _until("the freeze after a reboot", frozen, timeout=90, where=where)
        assert not await _ticking(node, workload_id)
        await _advance(clock.chain, GRACE + HOUR)
        deleted = await _until("the deletion", lambda: _state_is(bob.chain, contract_id, "deleted"))
        assert deleted["deleted_reason"] == "out_of_funds"
        farm = await bob.chain.farm(grid.farm_id)
        assert [ip["contract_id"] for ip in farm["public_ips"] if ip["ip"] == FARM_IP] == [0]

        async def gone() -> bool:
            return traces(node).without_images() == before

        await _until("the removal of every trace", gone, where=where)
        for chain in (bob.chain, clock.chain):
            await chain.close()

    _run(scenario())


def _bills(grid: Grid, contract_id: int) -> list[dict[str, Any]]:
    answer = httpx.get(f"{grid.ledger.url}/contracts/{contract_id}/bills", params={"size": 100})
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_the_traffic_of_a_machine_is_reported_and_billed(grid: Grid, node: NodeDaemon) -> None:
    where = f"; node log: {node.log}"
    size = 2_000_000

    async def scenario() -> None:
        alice = await funded_twin(grid.ledger.url, 50 * UNITS_PER_TOKEN)
        script = (
            f"{WEB}busybox dd if=/dev/zero of=/www/big bs=1000 count={size // 1000} 2>/dev/null; "
            + SERVE
        )
        deployment = deployment_of(alice.twin_id, [_machine(grid, "web", script)])
        contract_id = await _create(alice, node.node_id, deployment, public_ips=0)
        report = await wait_result(alice, contract_id, where=where)
        assert report.state == "ok", report
        web = report.workload("web")
        assert web is not None
        address = web.result.data["planetary_ip"]
        await _until("the first answer", lambda: _answers(grid, address), where=where)
        fetched = await asyncio.to_thread(
            grid.client.exec,
            [sys.executable, "-c", _COUNT_BYTES, f"http://[{address}]/big"],
        )
        assert fetched.stdout.strip() == str(size), fetched.stderr

        async def counted() -> int:
            contract = await alice.chain.contract(contract_id)
            billed = await asyncio.to_thread(_bills, grid, contract_id)
            total = int(contract["traffic"]) + sum(int(bill["traffic"]) for bill in billed)
            return total if total >= size else 0

        # An hour of ledger time later the node reports what crossed the machine's link.
        await _advance(alice.chain, HOUR + 60)
        total = await _until("the traffic report", counted, where=where)
        assert total < 2 * size  # the download and little else
        # The next bill charges what is left unbilled (the node may have reported part of
        # it before the first hour's bill, which charged that part).
        await _advance(alice.chain, HOUR + 60)

        async def billed() -> list[dict[str, Any]]:
            found = await asyncio.to_thread(_bills, grid, contract_id)
            with_traffic = [bill for bill in found if int(bill["traffic"])]
            if sum(int(bill["traffic"]) for bill in with_traffic) < size:
                return []
            return with_traffic

        bills = await _until("the bills of the traffic", billed, where=where)
        assert all(bill["usd"] > 0 for bill in bills)
        assert int((await alice.chain.contract(contract_id))["traffic"]) < size
        await alice.chain.cancel_contract(contract_id)
        await alice.chain.close()

    _run(scenario())


_COUNT_BYTES = (
    "import sys, urllib.request\n"
    "with urllib.request.urlopen(sys.argv[1], timeout=20) as answer:\n"
    "    print(len(answer.read()))\n"
)
