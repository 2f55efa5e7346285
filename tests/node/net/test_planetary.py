"""Zmachine namespaces with planetary addresses, made by a node inside host A, reached from B."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.node.hosts import Host, HostNetwork
from zgrid.node.errors import NetworkFailure
from zgrid.node.naming import unique_name
from zgrid.node.net import Yggdrasil, links, machine_address
from zgrid.node.net.planetary import PLANETARY, netns_prefix
from zgrid.node.primitives.base import WorkloadRef

SCOPE = "planetary-test-node"


class Agent:
    """The PlanetaryNetwork of the node on host A, asked through its agent process."""

    def __init__(self, host: Host, ygg: Yggdrasil, root: Path) -> None:
        self.host, self.ygg, self.root = host, ygg, root
        config = {
            "ygg_root": str(ygg.root),
            "ygg_scope": ygg.scope,
            "listen": ygg.listen,
            "peers": ygg.peers,
            "root": str(root),
            "scope": SCOPE,
        }
        argv = [sys.executable, "-m", "tests.node.net.planetary_agent", json.dumps(config)]
        self.process = subprocess.Popen(
            host.command(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        host.processes.append(self.process)  # type: ignore[arg-type]
        assert json.loads(self._line()) == {"ready": True}

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the planetary agent exited"
        return line

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def do(self, **request: Any) -> Any:
        answer = self.ask(**request)
        assert "result" in answer, answer
        return answer["result"]

    def attach(self, ref: WorkloadRef, contract_key: str = "c1", planetary: bool = True) -> Any:
        return self.do(op="attach", ref=_ref(ref), contract_key=contract_key, planetary=planetary)

    def detach(self, ref: WorkloadRef) -> None:
        self.do(op="detach", ref=_ref(ref))

    def inspect(self, ref: WorkloadRef) -> bool:
        return bool(self.do(op="inspect", ref=_ref(ref)))

    def present(self) -> set[str]:
        return set(self.do(op="present"))


def _ref(ref: WorkloadRef) -> list[Any]:
    return [ref.twin_id, ref.contract_id, ref.name]


@pytest.fixture(scope="module")
def node_host(host_network: HostNetwork, client_host: Host) -> Host:
    host = host_network.add_host("node-a")
    host.yggdrasil(peers=[client_host.yggdrasil_uri])
    return host


@pytest.fixture(scope="module")
def agent(node_host: Host, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    assert node_host.yggdrasil_daemon is not None
    root = tmp_path_factory.mktemp("planetary")
    agent = Agent(node_host, node_host.yggdrasil_daemon, root)
    yield agent
    for workload in agent.present():  # whatever a failed test left
        twin, contract, name = workload.split("-", 2)
        agent.detach(WorkloadRef(int(twin), int(contract), name))


def _host_links(host: Host) -> list[links.Link]:
    return asyncio.run(links.links(netns=host.netns))


def _baseline(host: Host) -> set[str]:
    assert host.yggdrasil_daemon is not None
    return {"lo", "eth0", host.yggdrasil_daemon.ifname}


def _assert_no_trace(agent: Agent, *refs: WorkloadRef) -> None:
    assert {link.name for link in _host_links(agent.host)} == _baseline(agent.host)
    names = asyncio.run(links.list_netns())
    for ref in refs:
        assert unique_name(netns_prefix(SCOPE), SCOPE, ref.id) not in names
    assert agent.present() == set()
    assert not list(agent.root.iterdir())
    host_routes = asyncio.run(links.routes(netns=agent.host.netns))
    assert not [r for r in host_routes if r.dst.startswith("3") and "/" not in r.dst]


_PING = ["ping", "-6", "-c", "1", "-W", "3"]


def _in_machine(netns: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=False
    )


def _get(client: Host, address: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        done = client.http_get(f"http://[{address}]/", timeout=3)
        if done.returncode == 0 or time.monotonic() > deadline:
            assert done.returncode == 0, done.stderr
            return done.stdout
        time.sleep(0.2)


def test_a_machine_is_reachable_from_a_yggdrasil_peer(
    agent: Agent, client_host: Host, tmp_path: Path
) -> None:
    require_tool("busybox")
    ref = WorkloadRef(7, 41, "web")
    answer = agent.ask(op="attach", ref=_ref(ref), contract_key="c1", planetary=True)
    attached = answer["result"]
    print(f"first attach: {answer['seconds']} s, {answer['commands']} commands")
    again = agent.ask(op="attach", ref=_ref(ref), contract_key="c1", planetary=True)
    print(f"repeated attach: {again['seconds']} s, {again['commands']} commands")
    ygg = agent.ygg
    assert attached["netns"] == unique_name(netns_prefix(SCOPE), SCOPE, ref.id)
    assert attached["ipv6"] == machine_address(ygg.subnet, ref.id)
    assert ipaddress.IPv6Address(attached["ipv6"]) in ipaddress.IPv6Network(ygg.subnet)
    assert agent.inspect(ref) and agent.present() == {ref.id}

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hello from a zmachine\n")
    serve = ["busybox", "httpd", "-f", "-p", "[::]:80", "-h", str(site)]
    httpd = subprocess.Popen(["ip", "netns", "exec", attached["netns"], *serve])
    try:
        started = time.monotonic()
        assert _get(client_host, attached["ipv6"]) == "hello from a zmachine\n"
        print(f"first HTTP answer over yggdrasil after {time.monotonic() - started:.3f} s")
        assert client_host.yggdrasil_daemon is not None
        out = _in_machine(attached["netns"], [*_PING, client_host.yggdrasil_daemon.address])
        assert out.returncode == 0, out.stdout + out.stderr  # the machine reaches 200::/7
    finally:
        httpd.kill()
        httpd.wait()
    answer = agent.ask(op="detach", ref=_ref(ref))
    print(f"detach: {answer['seconds']} s, {answer['commands']} commands")
    _assert_no_trace(agent, ref)
    agent.detach(ref)  # nothing there is not an error


def test_attach_twice_is_idempotent(agent: Agent) -> None:
    ref = WorkloadRef(7, 42, "twice")
    first = agent.attach(ref)
    assert agent.attach(ref) == first
    ports = [link for link in _host_links(agent.host) if link.kind == "veth" and link.master]
    inside = asyncio.run(links.addresses("eth0", netns=first["netns"]))
    assert inside.count(f"{first['ipv6']}/128") == 1
    bridges = [link for link in _host_links(agent.host) if link.kind == "bridge"]
    assert len(bridges) == 1 and len(ports) == 1 and ports[0].master == bridges[0].name
    agent.detach(ref)
    _assert_no_trace(agent, ref)


def test_machines_of_one_deployment_share_a_bridge(agent: Agent) -> None:
    first, second = WorkloadRef(8, 50, "one"), WorkloadRef(8, 50, "two")
    other = WorkloadRef(8, 51, "three")
    a, b = agent.attach(first, "c50"), agent.attach(second, "c50")
    agent.attach(other, "c51")
    bridges = {link.name for link in _host_links(agent.host) if link.kind == "bridge"}
    assert bridges == {unique_name("zb", SCOPE, "c50"), unique_name("zb", SCOPE, "c51")}
    ports = {link.master for link in _host_links(agent.host) if link.kind == "veth" and link.master}
    assert ports == bridges
    out = _in_machine(a["netns"], [*_PING, b["ipv6"]])
    assert out.returncode == 0, out.stdout + out.stderr
    agent.detach(first)
    assert unique_name("zb", SCOPE, "c50") in {link.name for link in _host_links(agent.host)}
    assert agent.inspect(second)
    agent.detach(second)
    agent.detach(other)
    _assert_no_trace(agent, first, second, other)


def test_a_machine_without_planetary_gets_a_bare_netns(agent: Agent) -> None:
    ref = WorkloadRef(9, 60, "quiet")
    bare = agent.attach(ref, planetary=False)
    assert bare["ipv6"] is None and bare["path"] == f"/run/netns/{bare['netns']}"
    assert agent.inspect(ref)
    assert {link.name for link in _host_links(agent.host)} == _baseline(agent.host)
    assert agent.attach(ref, planetary=True)["ipv6"]  # an update that asks for it
    assert agent.inspect(ref)
    assert agent.attach(ref, planetary=False)["ipv6"] is None  # and one that drops it
    assert {link.name for link in _host_links(agent.host)} == _baseline(agent.host)
    agent.detach(ref)
    _assert_no_trace(agent, ref)


def test_inspect_sees_a_link_removed_by_hand_and_attach_repairs_it(agent: Agent) -> None:
    ref = WorkloadRef(9, 61, "repair")
    agent.attach(ref)
    veth = next(link for link in _host_links(agent.host) if link.kind == "veth" and link.master)
    asyncio.run(links.delete_link(veth.name, netns=agent.host.netns))
    assert not agent.inspect(ref)
    agent.attach(ref)
    assert agent.inspect(ref)
    netns = unique_name(netns_prefix(SCOPE), SCOPE, ref.id)
    asyncio.run(links.delete_route(PLANETARY, netns=netns))
    assert not agent.inspect(ref)
    agent.attach(ref)
    assert agent.inspect(ref)
    agent.detach(ref)
    _assert_no_trace(agent, ref)


def test_a_kill_between_any_two_steps_converges(agent: Agent) -> None:
    ref = WorkloadRef(9, 62, "crash")
    attach_steps = agent.ask(op="attach", ref=_ref(ref), contract_key="c62", planetary=True)
    detach_steps = agent.ask(op="detach", ref=_ref(ref))
    print(f"attach runs {attach_steps['commands']} commands, detach {detach_steps['commands']}")
    expected = agent.attach(ref, "c62")
    agent.detach(ref)
    for step in range(1, max(attach_steps["commands"], detach_steps["commands"])):
        if step < attach_steps["commands"]:
            killed = agent.ask(
                op="attach", ref=_ref(ref), contract_key="c62", planetary=True, crash_after=step
            )
            assert killed == {"killed": 9}
            assert agent.attach(ref, "c62") == expected, f"attach after a kill at step {step}"
            assert agent.inspect(ref)
        else:
            agent.attach(ref, "c62")
        if step < detach_steps["commands"]:
            assert agent.ask(op="detach", ref=_ref(ref), crash_after=step) == {"killed": 9}
        agent.detach(ref)
        _assert_no_trace(agent, ref)


def test_machine_addresses_are_stable_distinct_and_inside_the_subnet() -> None:
    subnet = "301:c341:2ba1:15bf::/64"
    first = machine_address(subnet, "7-41-web")
    assert first == machine_address(subnet, "7-41-web")
    assert first != machine_address(subnet, "7-41-db")
    assert machine_address("300:1::/64", "7-41-web") != first
    network = ipaddress.IPv6Network(subnet)
    many = {machine_address(subnet, f"1-1-m{n}") for n in range(2000)}
    assert len(many) == 2000
    for address in many:
        interface_id = int(ipaddress.IPv6Address(address)) - int(network.network_address)
        assert ipaddress.IPv6Address(address) in network and interface_id > 1
    with pytest.raises(NetworkFailure, match="is not a /64"):
        machine_address("300:1::/48", "7-41-web")
