"""The harness itself: hosts reach each other and the root netns on the shared bridge."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import threading
import time
from pathlib import Path

from tests.node.hosts import HostNetwork
from zgrid.node.naming import unique_name
from zgrid.node.net import links


def test_hosts_ping_each_other_and_the_gateway(host_network: HostNetwork) -> None:
    first, second = host_network.add_host("ping-a"), host_network.add_host("ping-b")
    assert first.address != second.address
    for source, target in (
        (first, second.address),
        (second, first.address),
        (first, host_network.gateway),
    ):
        done = source.exec(["ping", "-c", "1", "-W", "2", target], timeout=10)
        assert done.returncode == 0, done.stdout + done.stderr
    inside = first.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    assert f"{first.address}/24" in inside.stdout


def test_a_server_in_the_root_netns_is_reachable_on_the_gateway(host_network: HostNetwork) -> None:
    host = host_network.add_host("web-client")
    server = http.server.ThreadingHTTPServer((host_network.gateway, 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://{host_network.gateway}:{server.server_address[1]}/"
        done = host.http_get(url)
        assert done.stdout == "hello from the root netns"
    finally:
        server.shutdown()
        server.server_close()


def test_processes_started_in_a_host_run_in_its_netns(
    host_network: HostNetwork, tmp_path: Path
) -> None:
    host = host_network.add_host("popen")
    process = host.popen(["sleep", "30"], tmp_path / "sleep.log")
    try:
        deadline = time.monotonic() + 5
        while process.pid not in host.pids() and time.monotonic() < deadline:
            time.sleep(0.01)  # nsenter enters the netns, then execs the command in place
        assert process.pid in host.pids()
    finally:
        process.kill()
        process.wait()


def test_closing_removes_every_trace(tmp_path: Path) -> None:
    network = HostNetwork(tmp_path / "net").start()
    try:
        host = network.add_host("short-lived")
        host.popen(["sleep", "30"], tmp_path / "sleep.log")
        # What a node in the host leaves when its test fails: a zmachine netns and its record.
        machine = unique_name("zm", host.netns, "left-behind")
        assert host.exec(["ip", "netns", "add", machine]).returncode == 0
        (host.dir / "node").mkdir(parents=True)
        (host.dir / "node" / f"{machine}.json").write_text(json.dumps({"netns": machine}))
        inside = subprocess.Popen(["ip", "netns", "exec", machine, "sleep", "30"])
        deadline = time.monotonic() + 5
        while not (host.pids() and host.pids(machine)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host.pids() and host.pids(machine)
    finally:
        network.close()
    assert inside.wait(timeout=5) == -9
    assert not host.pids()
    names = {link.name for link in _root_links()}
    assert network.bridge not in names and host.veth not in names
    assert not links.netns_path(host.netns).exists()
    assert not links.netns_path(machine).exists()


def _root_links() -> list[links.Link]:
    return asyncio.run(links.links())


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the root netns"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_exec_reports_failures_without_raising(host_network: HostNetwork) -> None:
    host = host_network.add_host("fails")
    done = host.exec(["sh", "-c", "echo no >&2; exit 3"])
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 3 and done.stderr == "no\n"
