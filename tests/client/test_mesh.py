"""The spec's private network: a /24, a key and a port per node, every node peered with
every other, machines' addresses; kept across applies, peers updated when a node joins
or leaves."""

from __future__ import annotations

import ipaddress
from types import MappingProxyType

import pytest

from tests.client.test_changes import FLISTS, TWIN, machine, spread
from zgrid.client.changes import CurrentContract, plan_changes
from zgrid.client.errors import PlacementError
from zgrid.client.mesh import access_config, network_key, plan_mesh, with_access
from zgrid.client.plan import ContractChange
from zgrid.client.spec.model import NetworkSpec, Spec
from zgrid.identity import new_wireguard_key, wireguard_public_key
from zgrid.types import Network, ZMachine

ENDPOINTS = MappingProxyType({1: "192.0.2.1", 2: "192.0.2.2", 3: "2001:db8::3"})


def _spec(replicas: int, ip_range: str | None = None) -> Spec:
    return Spec(
        name="app",
        machines=(machine(replicas=replicas),),
        network=NetworkSpec(ip_range=ip_range),
    )


def _plan(spec: Spec, current: dict[int, CurrentContract]) -> tuple[ContractChange, ...]:
    return plan_changes(
        spec, spread(spec), twin_id=TWIN, flists=FLISTS, current=current, endpoints=ENDPOINTS
    )


def _running(changes: tuple[ContractChange, ...]) -> dict[int, CurrentContract]:
    """What the nodes run once ``changes`` are carried out."""
    return {
        change.node_id: CurrentContract(100 + change.node_id, change.deployment)
        for change in changes
        if change.deployment is not None and change.action != "cancel"
    }


def _part(change: ContractChange) -> Network:
    assert change.deployment is not None
    (network,) = [w.data for w in change.deployment.workloads if isinstance(w.data, Network)]
    return network


def _address(change: ContractChange) -> str:
    assert change.deployment is not None
    (found,) = [w.data for w in change.deployment.workloads if isinstance(w.data, ZMachine)]
    return found.network.interfaces[0].ip


def test_two_nodes_get_a_subnet_each_and_peer_with_each_other() -> None:
    first, second = _plan(_spec(2, "10.50.0.0/16"), {})
    a, b = _part(first), _part(second)
    assert (a.ip_range, a.subnet, b.subnet) == ("10.50.0.0/16", "10.50.1.0/24", "10.50.2.0/24")
    assert a.wireguard_private_key != b.wireguard_private_key
    assert [p.wireguard_public_key for p in a.peers] == [
        wireguard_public_key(b.wireguard_private_key)
    ]
    assert a.peers[0].endpoint == f"192.0.2.2:{b.wireguard_listen_port}"
    assert a.peers[0].allowed_ips == ["10.50.2.0/24"]
    assert b.peers[0].endpoint == f"192.0.2.1:{a.wireguard_listen_port}"
    assert (_address(first), _address(second)) == ("10.50.1.2", "10.50.2.2")
    assert first.deployment is not None
    network_workload = first.deployment.workloads[0]  # before the machine: install order
    assert (network_workload.name, network_workload.type) == ("net", "network")
    machine_workload = first.deployment.workloads[-1]
    assert isinstance(machine_workload.data, ZMachine)
    assert machine_workload.data.network.interfaces[0].network == "net"


def test_a_joining_node_updates_the_peers_and_nothing_else() -> None:
    spec = _spec(2)
    before = _running(_plan(spec, {}))
    again = _plan(spec, before)
    assert [change.action for change in again] == ["keep", "keep"]
    grown = _plan(_spec(3), before)
    assert [change.action for change in grown] == ["update", "update", "create"]
    for change in grown[:2]:
        moves = {move.key: move.action for move in change.workloads}
        assert moves == {
            network_key(NetworkSpec()): "update",
            f"machine/web/{change.node_id - 1}": "keep",
        }
        running = before[change.node_id].deployment.workloads[0].data
        assert isinstance(running, Network)
        new = _part(change)
        assert (new.subnet, new.wireguard_private_key, new.wireguard_listen_port) == (
            running.subnet,
            running.wireguard_private_key,
            running.wireguard_listen_port,
        )
        assert len(new.peers) == 2
    third = _part(grown[2])
    assert ipaddress.IPv4Network(third.subnet).subnet_of(ipaddress.IPv4Network(third.ip_range))
    assert f"[2001:db8::3]:{third.wireguard_listen_port}" in {
        peer.endpoint for peer in _part(grown[0]).peers
    }
    # A node leaving: its contract goes, the others drop it as a peer.
    shrunk = _plan(spec, _running(grown))
    assert [change.action for change in shrunk] == ["update", "update", "cancel"]
    assert all(len(_part(change).peers) == 1 for change in shrunk[:2])


def test_machine_addresses_are_kept_and_the_range_is_the_deployments() -> None:
    spec = _spec(1)
    (first,) = _plan(spec, {})
    assert _part(first).ip_range == _part(_plan(spec, {})[0]).ip_range  # from the name
    running = _running((first,))
    (again,) = _plan(spec, running)
    assert _address(again) == _address(first)


def test_a_node_without_an_address_cannot_join() -> None:
    spec = _spec(2)
    with pytest.raises(PlacementError, match="node 2 registered no address"):
        plan_changes(
            spec, spread(spec), twin_id=TWIN, flists=FLISTS, current={}, endpoints={1: "192.0.2.1"}
        )


def test_a_full_range_is_refused() -> None:
    spec = _spec(1)
    many = {node: ["machine/web/0"] for node in range(1, 257)}
    with pytest.raises(PlacementError, match="no free /24 left"):
        plan_mesh(spec, many, current={}, endpoints=dict.fromkeys(many, "192.0.2.1"))


def test_the_deployers_machine_is_a_peer_of_every_node_and_kept_by_applies() -> None:
    spec = _spec(2, "10.50.0.0/16")
    running = _running(_plan(spec, {}))
    laptop = new_wireguard_key()
    public = wireguard_public_key(laptop)
    grown = {
        node: with_access(contract.deployment, network_key(NetworkSpec()), public)
        for node, contract in running.items()
    }
    for node, deployment in grown.items():
        assert deployment is not None
        assert deployment.version == running[node].deployment.version + 1
        (part,) = [w.data for w in deployment.workloads if isinstance(w.data, Network)]
        access = part.peers[-1]
        assert (access.subnet, access.allowed_ips, access.endpoint) == (
            "10.50.255.0/24",
            ["10.50.255.2/32"],
            "",
        )
        assert with_access(deployment, network_key(NetworkSpec()), public) is None  # once
    # An apply that knows of the peer keeps it: nothing changes.
    after = {node: CurrentContract(100 + node, d) for node, d in grown.items() if d is not None}
    again = plan_changes(
        spec,
        spread(spec),
        twin_id=TWIN,
        flists=FLISTS,
        current=after,
        endpoints=ENDPOINTS,
        access=public,
    )
    assert [change.action for change in again] == ["keep", "keep"]
    parts = {
        node: (next(w.data for w in d.workloads if isinstance(w.data, Network)), ENDPOINTS[node])
        for node, d in grown.items()
        if d is not None
    }
    config = access_config(laptop, parts)
    assert config.startswith(f"[Interface]\nPrivateKey = {laptop}\nAddress = 10.50.255.2/32\n")
    assert "AllowedIPs = 10.50.1.0/24" in config and "AllowedIPs = 10.50.2.0/24" in config
    assert f"Endpoint = 192.0.2.1:{parts[1][0].wireguard_listen_port}" in config


def test_no_node_takes_the_deployers_subnet() -> None:
    many = {node: ["machine/web/0"] for node in range(1, 255)}
    endpoints = dict.fromkeys(range(1, 256), "192.0.2.1")
    meshes = plan_mesh(_spec(1, "10.50.0.0/16"), many, current={}, endpoints=endpoints)
    assert "10.50.255.0/24" not in {mesh.network.subnet for mesh in meshes.values()}
    with pytest.raises(PlacementError, match="no free /24 left"):
        plan_mesh(
            _spec(1, "10.50.0.0/16"),
            {**many, 255: ["machine/web/0"]},
            current={},
            endpoints=endpoints,
        )


def test_a_node_with_more_machines_than_its_subnet_holds_is_refused() -> None:
    keys = [f"machine/web/{replica}" for replica in range(254)]  # .2 to .254 is 253
    with pytest.raises(PlacementError, match=r"subnet 10\.50\.1\.0/24 has no address left"):
        plan_mesh(_spec(1, "10.50.0.0/16"), {1: keys}, current={}, endpoints={})
    assert (
        len(
            plan_mesh(_spec(1, "10.50.0.0/16"), {1: keys[:253]}, current={}, endpoints={})[
                1
            ].addresses
        )
        == 253
    )
