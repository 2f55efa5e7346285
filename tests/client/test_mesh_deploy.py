"""A spec's private network through `zgrid deploy` and `zgrid apply` on three real nodes: a
third node's machine joins with apply, the first two nodes' parts take it as a peer in
place, and their machines keep running (the same containers)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.deploying import Deployer
from tests.conftest import require_tool
from tests.node.grid import Grid, NodeDaemon, module_grid
from tests.node.hosts import HostNetwork
from zgrid.node import node_scope, unique_name
from zgrid.node.net.planetary import netns_prefix

MESH = """\
name: mesh
network: {{ip_range: 10.70.0.0/16}}
machines:
  - name: web
    flist: busybox
    memory: 256MiB
    replicas: {replicas}
    planetary: false
    entrypoint: >-
      /bin/sh -c 'mkdir -p /www && hostname > /www/index.html;
      exec httpd -f -p 8080 -h /www'
placement: {{spread: true}}
"""


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    for tool in ("wireguard-go", "wg", "curl"):
        require_tool(tool)
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def nodes(grid: Grid) -> list[NodeDaemon]:
    return grid.add_nodes("mesh1", "mesh2", "mesh3")


@pytest.fixture(scope="module")
def deployer(
    grid: Grid, nodes: list[NodeDaemon], tmp_path_factory: pytest.TempPathFactory
) -> Deployer:
    return Deployer(grid, tmp_path_factory.mktemp("deployer") / "home").setup()


def _ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"


def _machines(deployer: Deployer) -> dict[str, dict[str, Any]]:
    view = deployer.json("show", "mesh")
    return {w["name"]: w for w in view["workloads"] if w["type"] == "zmachine"}


def _node_of(nodes: list[NodeDaemon], node_id: int) -> NodeDaemon:
    return next(node for node in nodes if node.node_id == node_id)


def _container_pid(node: NodeDaemon, container: str) -> int:
    state = subprocess.run(
        ["runc", "--root", str(node.data / "runtime" / "runc"), "state", container],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(state.stdout)["pid"])


def _fetch(node: NodeDaemon, container: str, url: str) -> str:
    scope = node_scope(node.data)
    netns = unique_name(netns_prefix(scope), scope, container)
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "curl", "-s", "-m", "3", url],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def _until_fetched(node: NodeDaemon, container: str, url: str, expected: str) -> None:
    deadline = time.monotonic() + 60
    while (got := _fetch(node, container, url)) != expected:
        assert time.monotonic() < deadline, f"{url} from {container}: {got!r}"
        time.sleep(0.5)


def _id(deployer: Deployer, machine: dict[str, Any]) -> str:
    return f"{deployer.twin_id()}-{machine['contract_id']}-{machine['name']}"


def test_a_third_nodes_machine_joins_with_apply_and_the_first_two_keep_running(
    grid: Grid, nodes: list[NodeDaemon], deployer: Deployer, tmp_path: Path
) -> None:
    spec = deployer.spec("mesh", MESH.format(replicas=2))
    _ok(deployer.run("deploy", str(spec)))
    before = _machines(deployer)
    assert len({m["node_id"] for m in before.values()}) == 2
    pids = {
        name: _container_pid(_node_of(nodes, m["node_id"]), _id(deployer, m))
        for name, m in before.items()
    }
    first, second = before["web_0"], before["web_1"]
    _until_fetched(
        _node_of(nodes, first["node_id"]),
        _id(deployer, first),
        f"http://{second['data']['ip']}:8080/",
        "web-1",
    )

    spec.write_text(MESH.format(replicas=3))
    plan = deployer.json("plan", str(spec))
    actions = {
        (change["node_id"], move["key"]): move["action"]
        for change in plan["contracts"]
        for move in change["workloads"]
    }
    for machine in (first, second):
        assert actions[machine["node_id"], "network/net/0"] == "update"
        assert actions[machine["node_id"], machine["key"]] == "keep"
    _ok(deployer.run("apply", str(spec), "--yes"))
    after = _machines(deployer)
    assert set(after) == {"web_0", "web_1", "web_2"}
    for name, machine in before.items():
        assert after[name]["contract_id"] == machine["contract_id"]
        node = _node_of(nodes, machine["node_id"])
        assert _container_pid(node, _id(deployer, machine)) == pids[name], "it was restarted"
    third = after["web_2"]
    assert third["node_id"] not in {first["node_id"], second["node_id"]}
    # The newcomer reaches both, and both reach it.
    for source, target, name in (
        (third, first, "web-0"),
        (third, second, "web-1"),
        (first, third, "web-2"),
        (second, third, "web-2"),
    ):
        _until_fetched(
            _node_of(nodes, source["node_id"]),
            _id(deployer, source),
            f"http://{target['data']['ip']}:8080/",
            name,
        )
    _ok(deployer.run("destroy", "mesh", "--yes"))
    assert deployer.live_contracts() == []
