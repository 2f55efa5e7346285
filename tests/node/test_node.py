"""The node daemon end to end: real ledger, hub, node processes in their own hosts, runc
containers from a busybox flist, disks, Zero-DB namespaces and the planetary network."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shlex
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.node.deployer import Twin, create, deployment_of, results, update, wait_result
from tests.node.grid import Grid, NodeDaemon, module_grid, traces
from tests.node.hosts import HostNetwork
from zgrid.client.deployer import rollback_deployment
from zgrid.node import follow_logs, node_scope
from zgrid.node.disks import DiskPool
from zgrid.node.sealing import ResultReport
from zgrid.types import (
    MIB,
    ZDB,
    ComputeCapacity,
    MachineNetwork,
    Mount,
    Volume,
    Workload,
    ZMachine,
    ZMount,
    make_workload,
)
from zgrid.zdb import ClientError, ZdbClient

PAGE = "hello from zgrid"


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def node(grid: Grid) -> NodeDaemon:
    return grid.add_node("node1")


def _machine(
    grid: Grid,
    name: str,
    script: str,
    *,
    memory: int = 256 * MIB,
    mounts: list[Mount] | None = None,
) -> Workload:
    return make_workload(
        name,
        ZMachine(
            flist=grid.busybox_url,
            compute_capacity=ComputeCapacity(cpu=1, memory=memory),
            mounts=mounts or [],
            entrypoint=f"/bin/sh -c {shlex.quote(script)}",
            network=MachineNetwork(planetary=True),
        ),
    )


def _run(coroutine: object) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, 180))  # type: ignore[arg-type]


async def _logs_until(report: ResultReport, name: str, needle: str, timeout: float = 30) -> str:
    access = report.workload(name).result.data["logs"]  # type: ignore[union-attr]
    seen = b""

    async def read() -> None:
        nonlocal seen
        async for chunk in follow_logs(
            access["ips"][0], access["port"], access["namespace"], access["password"]
        ):
            seen += chunk
            if needle.encode() in seen:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), timeout)
    return seen.decode(errors="replace")


def _http_from_client(grid: Grid, address: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        done = grid.client.http_get(f"http://[{address}]/", timeout=3)
        if done.returncode == 0:
            return done.stdout
        last = done.stderr
        time.sleep(0.3)
    raise AssertionError(f"no HTTP answer from [{address}] within {timeout} s: {last}")


WEB = (
    "mkdir -p /www && echo " + PAGE + " > /www/index.html; "
    "busybox dd if=/dev/zero of=/data/big bs=1M count=150 2>&1; echo dd-exit=$?; "
    'echo pids: $(ls /proc | busybox grep -c "^[0-9]"); echo init: $(cat /proc/1/cmdline); '
    "(busybox dd if=/dev/zero of=/dev/null bs=400M count=1; echo hog-exit=$?) & "
    "exec busybox httpd -f -p [::]:80 -h /www"
)


# The machine speaks RESP to its deployment's namespace from what the node put in its env.
GREETING = "from-the-machine"
TALK_TO_ZDB = (
    'r() { printf "*%d\\r\\n" $#; for a; do printf "\\$%d\\r\\n%s\\r\\n" ${#a} "$a"; done; }; '
    "mkdir -p /www; echo zdb-host=$ZDB_DB_HOST; for try in 1 2 3 4 5; do "
    '{ r SELECT "$ZDB_DB_NAMESPACE" "$ZDB_DB_PASSWORD"; r SET greeting ' + GREETING + "; "
    "r GET greeting; busybox sleep 1; } "
    '| busybox nc "$ZDB_DB_HOST" "$ZDB_DB_PORT" > /www/zdb.txt 2>&1; '
    "busybox grep -q " + GREETING + " /www/zdb.txt && break; busybox sleep 1; done; "
)


def test_a_container_with_a_disk_and_a_zdb_namespace_serves_its_page(
    grid: Grid, node: NodeDaemon
) -> None:
    async def scenario() -> None:
        alice = await grid.deployer()
        deployment = deployment_of(
            alice.twin_id,
            [
                make_workload("data", ZMount(size=100 * MIB)),
                make_workload(
                    "db", ZDB(size=64 * MIB, mode="user", password="s3cret", public=False)
                ),
                _machine(
                    grid, "web", TALK_TO_ZDB + WEB, mounts=[Mount(name="data", mountpoint="/data")]
                ),
            ],
        )
        contract = await create(alice, node.node_id, deployment)
        report = await wait_result(alice, contract, where=f"; node log: {node.log}")
        assert report.state == "ok", report
        web = report.workload("web")
        assert web is not None
        address = web.result.data["planetary_ip"]
        assert PAGE in _http_from_client(grid, address)
        # Its SELECT (with the password), SET and GET went through the node's Zero-DB.
        talked = grid.client.http_get(f"http://[{address}]/zdb.txt", timeout=5).stdout
        assert talked.split() == ["+OK", "$8", "greeting", f"${len(GREETING)}", GREETING], talked

        output = await _logs_until(report, "web", "init:")
        host = output.split("zdb-host=")[1].split()[0]
        assert ipaddress.IPv6Address(host) in ipaddress.IPv6Network("200::/7"), output
        assert "dd-exit=1" in output and "No space left on device" in output
        # Its own processes only: init (httpd), the memory hog's shell and the hog.
        pids = int(output.split("pids:")[1].split()[0])
        assert pids <= 4, output
        assert "init: /bin/sh" in output

        db = report.workload("db")
        assert db is not None
        namespace, port = db.result.data["namespace"], db.result.data["port"]
        zdb = await ZdbClient.connect(node.host.address, port)
        try:
            with pytest.raises(ClientError):
                await zdb.execute("SELECT", namespace)
            assert await zdb.execute("SELECT", namespace, "s3cret") == b"OK"
            assert await zdb.execute("GET", "greeting") == GREETING.encode()
            await zdb.execute("SET", "k", "v")
            assert await zdb.execute("GET", "k") == b"v"
        finally:
            await zdb.close()

        # The memory hog is killed by the OOM killer and the node says so.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = await results(alice, contract)
            machine = current.workload("web") if current else None
            if machine and machine.result.data.get("oom_kills"):
                assert "OOM killer" in machine.result.message
                break
            await asyncio.sleep(0.3)
        else:
            raise AssertionError(f"no OOM kill reported: {current}")
        await alice.chain.cancel_contract(contract)
        await alice.chain.close()

    _run(scenario())


def test_an_exiting_container_shows_its_code_and_output_to_its_deployer_only(
    grid: Grid, node: NodeDaemon
) -> None:
    async def scenario() -> None:
        alice, eve = await grid.deployer(), await grid.deployer()
        contract = await create(
            alice,
            node.node_id,
            deployment_of(alice.twin_id, [_machine(grid, "boom", "echo boom; exit 3")]),
        )
        deadline = time.monotonic() + 60
        while True:
            report = await results(alice, contract)
            machine = report.workload("boom") if report else None
            if machine is not None and machine.result.data.get("exit_code") == 3:
                break
            assert time.monotonic() < deadline, report
            await asyncio.sleep(0.2)
        assert machine.result.state == "error"
        assert (
            "boom" in machine.result.data["output_tail"]
            and "exited with code 3" in machine.result.message
        )
        assert report is not None
        assert "boom" in await _logs_until(report, "boom", "boom")
        # Eve can read the contract but not its sealed results, and guessing the password fails.
        with pytest.raises(Exception):  # noqa: B017 - any failure to open is right
            await results(eve, contract)
        access = machine.result.data["logs"]
        zdb = await ZdbClient.connect(access["ips"][0], access["port"])
        try:
            with pytest.raises(ClientError):
                await zdb.execute("SELECT", access["namespace"], "not-the-password")
        finally:
            await zdb.close()
        await alice.chain.cancel_contract(contract)
        for twin in (alice, eve):
            await twin.chain.close()

    _run(scenario())


@pytest.fixture(scope="module")
def crash_node(grid: Grid) -> NodeDaemon:
    return grid.add_node("node2")


def _web_deployment(grid: Grid, twin: Twin) -> object:
    script = (
        "mkdir -p /www && echo "
        + PAGE
        + " > /www/index.html; exec busybox httpd -f -p [::]:80 -h /www"
    )
    return deployment_of(
        twin.twin_id,
        [
            make_workload("data", ZMount(size=64 * MIB)),
            _machine(grid, "web", script, mounts=[Mount(name="data", mountpoint="/data")]),
            # Exits 3 once (its result says error), then runs: it must come back after a
            # reboot like any other machine.
            _machine(
                grid,
                "phoenix",
                "[ -e /ran ] && while :; do echo tick; busybox sleep 0.3; done; touch /ran; exit 3",
            ),
        ],
    )


def test_the_node_restores_everything_after_crashes_and_a_cancel_leaves_nothing(
    grid: Grid, crash_node: NodeDaemon
) -> None:
    node = crash_node
    before = traces(node).without_images()

    async def scenario() -> None:
        alice = await grid.deployer()
        contract = await create(alice, node.node_id, _web_deployment(grid, alice))  # type: ignore[arg-type]
        # Killed while it provisions: as soon as its state names the contract.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and f'"id": {contract},' not in _state_text(node.data):
            await asyncio.sleep(0.02)
        node.kill9()
        node.start()
        report = await wait_result(alice, contract, where=f"; node log: {node.log}")
        # The phoenix's output reaches its log also after the daemon's restarts.
        ticks = (await _logs_until(report, "phoenix", "tick")).count("tick")
        assert ticks >= 1
        web = report.workload("web")
        assert web is not None and web.result.state == "ok", report  # the phoenix may be in error
        address = report.workload("web").result.data["planetary_ip"]  # type: ignore[union-attr]
        assert PAGE in _http_from_client(grid, address)
        deadline = time.monotonic() + 30
        while True:  # the phoenix has exited once and runs again
            phoenix = (await results(alice, contract)).workload("phoenix")  # type: ignore[union-attr]
            if phoenix is not None and phoenix.result.data.get("exit_code") == 3:
                break
            assert time.monotonic() < deadline, phoenix
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # its restart back-off
        running = traces(node)
        assert running.containers == before.containers + 2
        assert running.loop_devices == before.loop_devices + 3  # a disk and two root volumes

        # Killed again once everything runs: its output still goes on reaching the log.
        shipped = (await _logs_until(report, "phoenix", "none" * 9, timeout=2)).count("tick")
        node.kill9()
        node.start()
        await asyncio.sleep(2)
        later = (await _logs_until(report, "phoenix", "none" * 9, timeout=2)).count("tick")
        assert later >= shipped + 4, (shipped, later)

        # Stopped, its container and mounts removed by hand: they come back.
        node.stop()
        _remove_by_hand(node)
        node.start()
        assert PAGE in _http_from_client(grid, address, timeout=60)
        await _until(lambda: traces(node).without_images() == running.without_images())

        # A reboot: every process and mount of the node gone, its data kept.
        from tests.node.grid import kill_node_processes, unmount_under  # noqa: PLC0415

        node.stop()
        kill_node_processes(node)
        unmount_under(node.data)
        node.start()
        assert PAGE in _http_from_client(grid, address, timeout=90)
        await _until(lambda: traces(node).containers == running.containers)

        # Cancelled while the node is down: it removes everything when it is back.
        node.stop()
        await alice.chain.cancel_contract(contract)
        node.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and traces(node).without_images() != before:
            await asyncio.sleep(0.3)
        assert traces(node).without_images() == before
        assert node.status()["contracts"] == []
        await alice.chain.close()

    _run(scenario())


async def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still not so after {timeout} s"
        await asyncio.sleep(0.2)


def _state_text(data: Path) -> str:
    import sqlite3  # noqa: PLC0415

    path = data / "state.db"
    if not path.exists():
        return ""
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(path, timeout=1)) as db,
    ):
        return " ".join(row[0] for row in db.execute("SELECT record FROM contracts"))
    return ""


def _remove_by_hand(node: NodeDaemon) -> None:
    import subprocess  # noqa: PLC0415

    root = str(node.data / "runtime" / "runc")
    listed = subprocess.run(
        ["runc", "--root", root, "list", "-q"], capture_output=True, text=True, check=False
    )
    for container in listed.stdout.split():
        subprocess.run(["runc", "--root", root, "delete", "--force", container], check=False)
    from tests.node.grid import unmount_under  # noqa: PLC0415

    unmount_under(node.data / "machines")


def test_an_update_grows_adds_and_removes_workloads_and_a_cancel_leaves_nothing(
    grid: Grid, node: NodeDaemon
) -> None:
    before = traces(node).without_images()

    async def scenario() -> None:
        alice = await grid.deployer()
        first = deployment_of(
            alice.twin_id,
            [
                make_workload("a", ZMount(size=64 * MIB)),
                make_workload("db", ZDB(size=32 * MIB, mode="seq", password="pw", public=False)),
            ],
        )
        contract = await create(alice, node.node_id, first)
        report = await wait_result(alice, contract)
        assert report.state == "ok", report
        namespace = report.workload("db").result.data["namespace"]  # type: ignore[union-attr]
        second = deployment_of(
            alice.twin_id,
            [
                make_workload("a", ZMount(size=128 * MIB), version=1),
                make_workload("b", ZMount(size=64 * MIB), version=1),
            ],
            version=1,
        )
        await update(alice, contract, node.node_id, second)
        report = await wait_result(alice, contract, version=1)
        assert report.state == "ok", report
        assert report.workload("a").result.data["size"] == 128 * MIB  # type: ignore[union-attr]
        assert report.workload("b") is not None and report.workload("db") is None
        zdb = await ZdbClient.connect(node.host.address, 9900)
        try:
            with pytest.raises(ClientError):
                await zdb.execute("SELECT", namespace, "pw")
        finally:
            await zdb.close()
        # The capacity the contract uses is on the ledger, and `zgrid node status` agrees.
        deadline = time.monotonic() + 10
        while (await alice.chain.contract(contract))["used"]["sru"] != 192 * MIB:
            assert time.monotonic() < deadline, await alice.chain.contract(contract)
            await asyncio.sleep(0.1)
        [mine] = [c for c in node.status()["contracts"] if c["id"] == contract]
        assert mine["state"] == "ok" and mine["version"] == 1
        assert [w["name"] for w in mine["workloads"]] == ["a", "b"]

        await alice.chain.cancel_contract(contract)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and traces(node).without_images() != before:
            await asyncio.sleep(0.2)
        assert traces(node).without_images() == before

        # A disk no contract owns (left by hand, or by a node that lost its state) goes at
        # the next reconcile pass.
        pool = DiskPool(node.data / "disks", scope=node_scope(node.data))
        assert node.process is not None
        # Made whole while the daemon is held: a reconcile pass in the middle of the making
        # (two processes, no lock between them) would race it, not test it.
        os.kill(node.process.pid, signal.SIGSTOP)
        try:
            await pool.create("9-999-orphan", 8 * MIB, kind="zmount")
        finally:
            os.kill(node.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            "9-999-orphan" in await pool.ids() or traces(node).without_images() != before
        ):
            await asyncio.sleep(0.2)
        assert "9-999-orphan" not in await pool.ids()
        assert traces(node).without_images() == before
        await alice.chain.close()

    _run(scenario())


async def _refusal(twin: Twin, contract: int, version: int, node: NodeDaemon) -> ResultReport:
    """The node's report once it says it refused ``version`` of ``contract``."""
    deadline = time.monotonic() + 30
    while True:
        report = await results(twin, contract)
        if report is not None and f"version {version} refused" in report.message:
            return report
        assert time.monotonic() < deadline, f"{report}; node log: {node.log.read_text()}"
        await asyncio.sleep(0.1)


def test_updates_after_refused_or_unseen_versions_are_applied(grid: Grid, node: NodeDaemon) -> None:
    async def scenario() -> None:
        alice = await grid.deployer()
        first = deployment_of(alice.twin_id, [make_workload("a", ZMount(size=16 * MIB))])
        contract = await create(alice, node.node_id, first)
        assert (await wait_result(alice, contract)).state == "ok"

        # Version 1 is refused by the update rules (a workload keeps its type) ...
        second = deployment_of(
            alice.twin_id, [make_workload("a", Volume(size=16 * MIB), version=1)], version=1
        )
        await update(alice, contract, node.node_id, second)
        report = await _refusal(alice, contract, 1, node)
        assert "cannot change from zmount to volume" in report.message
        assert report.version == 0 and report.state == "ok"
        assert [(w.name, w.type, w.result.state) for w in report.workloads] == [
            ("a", "zmount", "ok")
        ]
        # ... and version 2, the deployer's rollback (what ran, the disk at version 2), runs.
        back = rollback_deployment(first, second)
        await update(alice, contract, node.node_id, back)
        report = await wait_result(
            alice, contract, version=2, timeout=30, where=f"; node log: {node.log}"
        )
        assert report.state == "ok", report
        assert [(w.name, w.version) for w in report.workloads] == [("a", 2)]

        # Version 3 is refused for its capacity: more disk than its contract declares.
        grown = deployment_of(
            alice.twin_id,
            [back.workloads[0], make_workload("b", ZMount(size=16 * MIB), version=3)],
            version=3,
        )
        declared = {"cru": 0, "mru": 0, "sru": 16 * MIB, "hru": 0}
        await update(alice, contract, node.node_id, grown, capacity=declared)
        report = await _refusal(alice, contract, 3, node)
        assert "more than the 16 MiB its contract declares" in report.message, report
        assert report.version == 2 and [w.name for w in report.workloads] == ["a"]

        # Versions 4 and 5 land while the node is down: it only ever reads version 5.
        node.stop()
        try:
            fourth = deployment_of(
                alice.twin_id,
                [back.workloads[0], make_workload("b", ZMount(size=16 * MIB), version=4)],
                version=4,
            )
            await update(alice, contract, node.node_id, fourth)
            fifth = deployment_of(
                alice.twin_id,
                [*fourth.workloads, make_workload("c", ZMount(size=8 * MIB), version=5)],
                version=5,
            )
            await update(alice, contract, node.node_id, fifth)
        finally:
            node.start()
        report = await wait_result(
            alice, contract, version=5, timeout=30, where=f"; node log: {node.log}"
        )
        assert report.state == "ok", report
        assert [(w.name, w.version, w.result.state) for w in report.workloads] == [
            ("a", 2, "ok"),
            ("b", 4, "ok"),
            ("c", 5, "ok"),
        ]
        await alice.chain.cancel_contract(contract)
        await _until(lambda: all(c["id"] != contract for c in node.status()["contracts"]))
        await alice.chain.close()

    _run(scenario())


def test_a_machine_without_entrypoint_runs_the_flists_and_gets_its_ssh_key(
    grid: Grid, node: NodeDaemon, tmp_path: Path
) -> None:
    source = tmp_path / "tagged"
    for directory in ("bin", "root"):
        (source / directory).mkdir(parents=True)
    import shutil  # noqa: PLC0415

    shutil.copy2(shutil.which("busybox") or "/bin/busybox", source / "bin" / "busybox")
    (source / "bin" / "sh").symlink_to("busybox")
    (source / "bin" / "cat").symlink_to("busybox")
    script = "cat /root/.ssh/authorized_keys; echo tags-ran $GREETING; exec busybox sleep 3600"
    url = grid.push(
        source,
        "tagged",
        {
            "entrypoint": json.dumps(["/bin/sh", "-c"]),
            "cmd": json.dumps([script]),
            "env": json.dumps(["GREETING=hi", "PATH=/bin"]),
        },
    )
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4d test@zgrid"

    async def scenario() -> None:
        alice = await grid.deployer()
        machine = make_workload(
            "tagged",
            ZMachine(
                flist=url,
                compute_capacity=ComputeCapacity(cpu=1, memory=256 * MIB),
                env={"SSH_KEY": key},
                network=MachineNetwork(planetary=False),
            ),
        )
        contract = await create(alice, node.node_id, deployment_of(alice.twin_id, [machine]))
        report = await wait_result(alice, contract)
        assert report.state == "ok", report
        output = await _logs_until(report, "tagged", "tags-ran")
        assert key in output and "tags-ran hi" in output
        await alice.chain.cancel_contract(contract)
        await alice.chain.close()

    _run(scenario())


def test_an_exit_while_the_node_is_down_is_reported_when_it_is_back(
    grid: Grid, node: NodeDaemon
) -> None:
    script = "while [ ! -e /data/stop ]; do busybox sleep 0.2; done; rm /data/stop; exit 7"

    async def scenario() -> None:
        alice = await grid.deployer()
        deployment = deployment_of(
            alice.twin_id,
            [
                make_workload("data", ZMount(size=16 * MIB)),
                _machine(grid, "waiter", script, mounts=[Mount(name="data", mountpoint="/data")]),
            ],
        )
        contract = await create(alice, node.node_id, deployment)
        report = await wait_result(alice, contract)
        assert report.state == "ok", report
        node.stop()
        # The node's disks are mounted on the machine: the test tells the machine to exit.
        stop = node.data / "disks" / "mounts" / f"{alice.twin_id}-{contract}-data" / "stop"
        stop.touch()
        deadline = time.monotonic() + 20
        while stop.exists():
            assert time.monotonic() < deadline, "the machine did not see its stop file"
            await asyncio.sleep(0.1)
        node.start()
        deadline = time.monotonic() + 20
        while True:
            current = await results(alice, contract)
            waiter = current.workload("waiter") if current else None
            if waiter is not None and waiter.result.data.get("exit_code") == 7:
                break
            assert time.monotonic() < deadline, current
            await asyncio.sleep(0.2)
        assert "exited with code 7" in waiter.result.message
        await alice.chain.cancel_contract(contract)
        await alice.chain.close()

    _run(scenario())
