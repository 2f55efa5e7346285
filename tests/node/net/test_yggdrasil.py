"""The node's yggdrasil: stable keys, one daemon per node, peering and traffic between hosts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.node.hosts import YGGDRASIL_PORT, Host, HostNetwork
from zgrid.node.errors import NetworkFailure
from zgrid.node.net import Yggdrasil


def _wait_for_peers(ygg: Yggdrasil, timeout: float = 10) -> float:
    started = time.monotonic()
    while asyncio.run(ygg.peers_up()) < 1:
        assert time.monotonic() - started < timeout, "yggdrasil peers did not come up"
        time.sleep(0.05)
    return time.monotonic() - started


def test_config_is_made_once_and_keeps_its_address(tmp_path: Path) -> None:
    require_tool("yggdrasil")
    ygg = Yggdrasil(tmp_path / "ygg", scope="node-a", listen=["tcp://192.0.2.5:7443"])
    with pytest.raises(NetworkFailure, match="no config yet"):
        _ = ygg.address
    asyncio.run(ygg.ensure_config())
    address, subnet = ygg.address, ygg.subnet
    assert ipaddress.IPv6Address(address) in ipaddress.IPv6Network("200::/8")
    assert ipaddress.IPv6Network(subnet).prefixlen == 64
    assert ipaddress.IPv6Network(subnet).subnet_of(ipaddress.IPv6Network("300::/8"))
    config = json.loads(ygg.config_path.read_text())
    assert stat.S_IMODE(ygg.config_path.stat().st_mode) == 0o600
    assert config["MulticastInterfaces"] == []
    assert config["Listen"] == ["tcp://192.0.2.5:7443"] and config["Peers"] == []
    assert config["AdminListen"] == f"unix://{ygg.admin_socket}"
    assert config["IfName"] == ygg.ifname and len(ygg.ifname) <= 15

    again = Yggdrasil(tmp_path / "ygg", scope="node-a", peers=["tcp://192.0.2.6:7443"])
    assert (again.address, again.subnet) == (address, subnet)  # read back without a call
    asyncio.run(again.ensure_config())
    assert (again.address, again.subnet) == (address, subnet)
    assert json.loads(again.config_path.read_text())["Peers"] == ["tcp://192.0.2.6:7443"]
    other = Yggdrasil(tmp_path / "other", scope="node-b")
    asyncio.run(other.ensure_config())
    assert other.address != address and other.ifname != ygg.ifname


def test_a_root_too_long_for_the_admin_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NetworkFailure, match="too long for its admin socket"):
        Yggdrasil(tmp_path / ("x" * 120), scope="s")


def test_two_hosts_peer_and_ping_each_other(host_network: HostNetwork) -> None:
    require_tool("yggdrasil")
    first = host_network.add_host("ygg-a")
    second = host_network.add_host("ygg-b")
    started = time.monotonic()
    listener = first.yggdrasil()
    dialer = second.yggdrasil(peers=[first.yggdrasil_uri])
    up = time.monotonic() - started
    peered = _wait_for_peers(dialer)
    _wait_for_peers(listener)
    print(f"two daemons up in {up:.2f} s, peered {peered:.2f} s later")
    for source, target in ((second, listener.address), (first, dialer.address)):
        done = source.exec(["ping", "-6", "-c", "1", "-W", "3", target], timeout=10)
        assert done.returncode == 0, done.stdout + done.stderr
    tun = first.exec(["ip", "-j", "addr", "show", "dev", listener.ifname])
    assert listener.address in tun.stdout


def test_a_live_daemon_is_reused_and_a_dead_one_started(host_network: HostNetwork) -> None:
    require_tool("yggdrasil")
    host = host_network.add_host("ygg-restart")
    ygg = host.yggdrasil()
    pid, address = ygg.pid(), ygg.address
    assert pid is not None
    host.yggdrasil()
    assert ygg.pid() == pid  # ensure_running found the live one

    _two_starts_at_once(host)
    assert ygg.pid() == pid and _count_daemons(ygg) == 1

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while ygg.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    ygg.pid_path.unlink()  # a crash may take the pid file too: the config path finds it
    host.yggdrasil()
    restarted = ygg.pid()
    assert restarted is not None and restarted != pid and ygg.address == address
    _two_starts_at_once(host)
    assert _count_daemons(ygg) == 1

    nobody = f"tcp://{host_network.prefix}.250:{YGGDRASIL_PORT}"  # on the bridge, unused
    changed = host.yggdrasil(peers=[nobody])  # new peers: the daemon restarts with them
    assert changed.pid() not in (None, restarted) and changed.address == address
    assert json.loads(changed.config_path.read_text())["Peers"] == [nobody]
    assert _count_daemons(ygg) == 1

    asyncio.run(ygg.stop())
    assert ygg.pid() is None and _count_daemons(ygg) == 0
    assert host.exec(["ip", "link", "show", ygg.ifname]).returncode != 0  # its TUN went too
    asyncio.run(ygg.stop())


def _two_starts_at_once(host: Host) -> None:
    """Two objects for the same node start it at once (each its own lock file handle)."""
    ygg = host.yggdrasil_daemon
    assert ygg is not None

    def start() -> None:
        twin = Yggdrasil(
            ygg.root, scope=ygg.scope, listen=ygg.listen, peers=ygg.peers, netns=host.netns
        )
        asyncio.run(twin.ensure_running())

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for started in [pool.submit(start) for _ in range(2)]:
            started.result(timeout=30)


def _count_daemons(ygg: Yggdrasil) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(ygg.config_path).encode() in argv:
                count += 1
    return count


_NODE_START = """
import asyncio, json, sys, time
from zgrid.node.net import Yggdrasil
a = json.loads(sys.argv[1])
started = time.monotonic()
ygg = Yggdrasil(a["root"], scope=a["scope"], listen=a["listen"], peers=a["peers"])
asyncio.run(ygg.ensure_running())
print(f"{time.monotonic() - started:.3f}")
"""


def test_a_node_in_a_host_starts_its_own_and_peers_with_the_client(
    host_network: HostNetwork, client_host: Host
) -> None:
    """What a node daemon does in its host: no ``netns``, its own root, the client as peer."""
    host = host_network.add_host("ygg-node")
    root = host.dir / "node" / "yggdrasil"
    peers = [client_host.yggdrasil_uri]
    args = {"root": str(root), "scope": host.netns, "listen": [], "peers": peers}
    done = host.python(_NODE_START, json.dumps(args))
    assert done.returncode == 0, done.stderr
    print(f"a node's yggdrasil is up {done.stdout.strip()} s after ensure_running")
    ygg = Yggdrasil(root, scope=host.netns)
    assert ygg.pid() in host.pids()  # the TUN and the daemon are in the host's netns
    print(f"peered {_wait_for_peers(ygg):.2f} s later")
    assert client_host.yggdrasil_daemon is not None
    assert asyncio.run(client_host.yggdrasil_daemon.peers_up()) >= 1
    ping = client_host.exec(["ping", "-6", "-c", "1", "-W", "3", ygg.address], timeout=10)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # No stop here: closing the network kills whatever runs in its hosts.
