"""Private networks on real nodes: two nodes' parts of one network joined by WireGuard,
machines on them reaching each other, another twin's network on the same node reaching
neither, the traffic between the nodes encrypted, peers updated in place, and a cancel
that leaves nothing (namespaces, links, wireguard-go)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capture import FrameCapture, udp_ports
from tests.conftest import require_tool
from tests.node.deployer import create, deployment_of, update, wait_result
from tests.node.grid import Grid, NodeDaemon, module_grid, traces
from tests.node.hosts import HostNetwork
from zgrid.identity import wireguard_public_key as public_key
from zgrid.node import node_scope, unique_name
from zgrid.node.net.planetary import netns_prefix
from zgrid.node.net.wireguard import SOCKET_DIR
from zgrid.types import (
    MIB,
    NODE_INTERFACE,
    ComputeCapacity,
    MachineInterface,
    MachineNetwork,
    Network,
    Peer,
    Workload,
    ZMachine,
    make_workload,
    workload_id,
)

MARKER = "zgrid-private-marker-7f3a"
RANGE = "10.230.0.0/16"


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    for tool in ("wireguard-go", "wg", "qemu-system-x86_64"):
        require_tool(tool)
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def nodes(grid: Grid) -> list[NodeDaemon]:
    return grid.add_nodes("neta", "netb")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _network(subnet: str, key: str, port: int, peers: list[Peer], *, version: int = 0) -> Workload:
    return make_workload(
        "net",
        Network(
            ip_range=RANGE,
            subnet=subnet,
            wireguard_private_key=key,
            wireguard_listen_port=port,
            peers=peers,
        ),
        version=version,
    )


def _container_pid(node: NodeDaemon, machine_id: str) -> int:
    state = subprocess.run(
        ["runc", "--root", str(node.data / "runtime" / "runc"), "state", machine_id],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(state.stdout)["pid"])


def _machine(grid: Grid, name: str, ip: str, page: str, *, mode: str = "container") -> Workload:
    script = f"mkdir -p /www && echo {page} > /www/index.html; exec httpd -f -p 8080 -h /www"
    return make_workload(
        name,
        ZMachine(
            flist=grid.busybox_url,
            compute_capacity=ComputeCapacity(cpu=1, memory=256 * MIB),
            entrypoint=f"/bin/sh -c '{script}'",
            network=MachineNetwork(interfaces=[MachineInterface(network="net", ip=ip)]),
            mode=mode,
        ),
    )


def _in_machine(
    node: NodeDaemon, machine_id: str, argv: list[str]
) -> subprocess.CompletedProcess[str]:
    """``argv`` (a tool of this machine) in the machine's network namespace."""
    scope = node_scope(node.data)
    netns = unique_name(netns_prefix(scope), scope, machine_id)
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _reaches(node: NodeDaemon, machine_id: str, ip: str, page: str | None = None) -> bool:
    pinged = _in_machine(node, machine_id, ["ping", "-c", "1", "-W", "2", ip]).returncode == 0
    if page is None:
        return pinged
    fetched = _in_machine(node, machine_id, ["curl", "-s", "-m", "3", f"http://{ip}:8080/"])
    return pinged and page in fetched.stdout


def _until_reaches(
    node: NodeDaemon, machine_id: str, ip: str, page: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not _reaches(node, machine_id, ip, page):
        assert time.monotonic() < deadline, f"{machine_id} does not reach {ip}"
        time.sleep(0.3)


def _wireguard_processes(names: list[str]) -> list[str]:
    """The wireguard-go processes serving any of the links ``names``: "PID ARGV..."."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            words = cmdline.decode(errors="replace").split("\0")
            if words[0].endswith("wireguard-go") and set(words[1:]) & set(names):
                found.append(f"{entry} {' '.join(words)}")
    return found


def test_machines_on_two_nodes_talk_privately_and_only_to_their_own_network(
    grid: Grid, nodes: list[NodeDaemon], host_network: HostNetwork
) -> None:
    node_a, node_b = nodes
    before = [traces(node).without_images() for node in nodes]
    key_a, key_b, key_c = _key(), _key(), _key()
    port_a, port_b, port_c = 51820, 51821, 51822

    def peer_of(key: str, subnet: str, node: NodeDaemon, port: int) -> Peer:
        return Peer(
            subnet=subnet,
            wireguard_public_key=public_key(key),
            allowed_ips=[subnet],
            endpoint=f"{node.host.address}:{port}",
        )

    async def scenario() -> None:
        alice = await grid.deployer()
        carol = await grid.deployer()
        # Each node tells the ledger where it is reached: its peers' endpoints.
        for node in nodes:
            record = await alice.chain.node(node.node_id)
            zos = [i for i in record["interfaces"] if i["name"] == NODE_INTERFACE]
            assert zos and node.host.address in zos[0]["ips"], record["interfaces"]
        net_a = _network(
            "10.230.1.0/24", key_a, port_a, [peer_of(key_b, "10.230.2.0/24", node_b, port_b)]
        )
        net_b = _network(
            "10.230.2.0/24", key_b, port_b, [peer_of(key_a, "10.230.1.0/24", node_a, port_a)]
        )
        part_a = deployment_of(alice.twin_id, [net_a, _machine(grid, "a", "10.230.1.2", "from-a")])
        # On node B a VM joins the network too, through a tap on the same bridge.
        part_b = deployment_of(
            alice.twin_id,
            [
                net_b,
                _machine(grid, "b", "10.230.2.2", "from-b"),
                _machine(grid, "v", "10.230.2.3", "from-vm", mode="vm"),
            ],
        )
        # Carol's network on node A uses the very same subnet: still another network.
        net_c = _network("10.230.1.0/24", key_c, port_c, [])
        part_c = deployment_of(carol.twin_id, [net_c, _machine(grid, "c", "10.230.1.3", "from-c")])
        contract_a = await create(alice, node_a.node_id, part_a)
        contract_b = await create(alice, node_b.node_id, part_b)
        contract_c = await create(carol, node_a.node_id, part_c)
        for twin, contract in ((alice, contract_a), (alice, contract_b), (carol, contract_c)):
            report = await wait_result(twin, contract, timeout=120)
            assert report.state == "ok", [(w.name, w.result.message) for w in report.workloads]
        net_result = (await wait_result(alice, contract_a, timeout=10)).workload("net")
        assert net_result is not None
        assert net_result.result.data["wireguard_public_key"] == public_key(key_a)
        assert net_result.result.data["gateway"] == "10.230.1.1"
        machine_a = workload_id(alice.twin_id, contract_a, "a")
        machine_b = workload_id(alice.twin_id, contract_b, "b")
        machine_c = workload_id(carol.twin_id, contract_c, "c")

        # Across the nodes, both ways, ping and TCP; the frames between them are WireGuard.
        capture = FrameCapture(node_a.host.veth)  # every frame of node A, on its link
        try:
            await asyncio.to_thread(_until_reaches, node_a, machine_a, "10.230.2.2", "from-b")
            await asyncio.to_thread(_until_reaches, node_b, machine_b, "10.230.1.2", "from-a")
            await asyncio.to_thread(_until_reaches, node_a, machine_a, "10.230.2.3", "from-vm")
            # The marker crosses as a request path (the answer is a 404 that names it).
            sent = _in_machine(
                node_a,
                machine_a,
                ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                 f"http://10.230.2.2:8080/{MARKER}"],
            )  # fmt: skip
            assert sent.stdout == "404", sent
        finally:
            frames = capture.stop()
        assert {port_a, port_b} <= udp_ports(frames), "no WireGuard datagrams on the bridge"
        assert not any(MARKER.encode() in frame for frame in frames), "plaintext on the wire"
        assert not any(b"from-b" in frame for frame in frames), "a page crossed in plaintext"

        # Carol's machine, on node A with an address of the same subnet, reaches neither.
        assert not _reaches(node_a, machine_c, "10.230.1.2")
        assert not _reaches(node_a, machine_c, "10.230.2.2")
        assert not _reaches(node_a, machine_a, "10.230.1.3")

        # New peers in place: machine A's container keeps running, the path keeps working.
        pid_before = _container_pid(node_a, machine_a)
        extra = Peer(
            subnet="10.230.9.0/24",
            wireguard_public_key=public_key(_key()),
            allowed_ips=["10.230.9.0/24"],
        )  # no endpoint: it would make the node send handshakes off the machine
        peers_a = [peer_of(key_b, "10.230.2.0/24", node_b, port_b), extra]
        second = deployment_of(
            alice.twin_id,
            [
                _network("10.230.1.0/24", key_a, port_a, peers_a, version=1),
                part_a.workloads[1],
            ],
            version=1,
        )
        await update(alice, contract_a, node_a.node_id, second)
        report = await wait_result(alice, contract_a, timeout=60, version=1)
        assert report.state == "ok", report
        wg_a = unique_name(
            "zw", node_scope(node_a.data), workload_id(alice.twin_id, contract_a, "net")
        )
        shown = subprocess.run(
            ["wg", "show", wg_a, "peers"], capture_output=True, text=True, check=False
        )
        assert set(shown.stdout.split()) == {public_key(key_b), extra.wireguard_public_key}
        assert _container_pid(node_a, machine_a) == pid_before
        await asyncio.to_thread(_until_reaches, node_a, machine_a, "10.230.2.2", "from-b")
        wireguard_links = [
            unique_name("zw", node_scope(node.data), workload_id(twin.twin_id, contract, "net"))
            for node, twin, contract in (
                (node_a, alice, contract_a), (node_b, alice, contract_b), (node_a, carol, contract_c)
            )
        ]  # fmt: skip
        assert all((SOCKET_DIR / f"{name}.sock").exists() for name in wireguard_links)
        assert len(_wireguard_processes(wireguard_links)) == 3

        # A power cut on node A (its daemon and wireguard-go killed): once it is back, the
        # reconcile loop gives the network a WireGuard link again and the path works.
        node_a.kill9()
        (wireguard_a,) = _wireguard_processes([wireguard_links[0]])
        os.kill(int(wireguard_a.split()[0]), 9)
        node_a.start()
        await asyncio.to_thread(_until_reaches, node_a, machine_a, "10.230.2.2", "from-b", 60)
        assert len(_wireguard_processes(wireguard_links)) == 3

        for twin, contract in ((alice, contract_a), (alice, contract_b), (carol, contract_c)):
            await twin.chain.cancel_contract(contract)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            [traces(node).without_images() for node in nodes] != before
            or _wireguard_processes(wireguard_links)
        ):
            await asyncio.sleep(0.3)
        assert [traces(node).without_images() for node in nodes] == before
        assert _wireguard_processes(wireguard_links) == []
        assert not any((SOCKET_DIR / f"{name}.sock").exists() for name in wireguard_links)
        await alice.chain.close()
        await carol.chain.close()

    asyncio.run(asyncio.wait_for(scenario(), 400))
