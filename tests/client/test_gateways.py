"""Gateways in a plan: on a gateway node, which joins the spec's private network, proxying
to every replica of its machine at its private address."""

from __future__ import annotations

import pytest

from tests.client.test_changes import FLISTS, TWIN, machine
from tests.client.test_mesh import ENDPOINTS
from zgrid.client.changes import plan_changes
from zgrid.client.errors import PlacementError
from zgrid.client.items import spec_items
from zgrid.client.offers import NodeOffer
from zgrid.client.planner import place
from zgrid.client.spec.model import GatewaySpec, NetworkSpec, Spec
from zgrid.types import GIB, Capacity, GatewayFQDNProxy, GatewayNameProxy, Network, ZMachine


def _spec() -> Spec:
    return Spec(
        name="app",
        machines=(machine(replicas=2),),
        network=NetworkSpec(),
        gateways=(
            GatewaySpec(machine="web", port=8080, name="hello"),
            GatewaySpec(machine="web", port=8443, fqdn="www.example.test", tls_passthrough=True),
        ),
    )


def _offer(node_id: int, domain: str = "") -> NodeOffer:
    room = Capacity(cru=8, mru=16 * GIB, sru=100 * GIB, hru=100 * GIB, ipv4=2)
    return NodeOffer(node_id, 10 + node_id, 1, "farm", "up", room, room, domain=domain)


def test_gateways_go_to_a_gateway_node_which_joins_the_network() -> None:
    spec = _spec()
    assignment = place(spec, [_offer(1), _offer(2), _offer(3, "gw.example.org")])
    assert assignment["gateway/hello/0"] == assignment["gateway/www.example.test/0"] == 3
    changes = plan_changes(
        spec, assignment, twin_id=TWIN, flists=FLISTS, current={}, endpoints=ENDPOINTS
    )
    by_node = {c.node_id: c for c in changes}
    gateway_node = by_node[3].deployment
    assert gateway_node is not None
    data = [w.data for w in gateway_node.workloads]
    (part,) = [d for d in data if isinstance(d, Network)]
    (name,) = [d for d in data if isinstance(d, GatewayNameProxy)]
    (fqdn,) = [d for d in data if isinstance(d, GatewayFQDNProxy)]
    ips = sorted(
        w.data.network.interfaces[0].ip
        for c in changes
        if c.deployment is not None
        for w in c.deployment.workloads
        if isinstance(w.data, ZMachine)
    )
    assert name.name == "hello" and name.network == "net" and not name.tls_passthrough
    assert sorted(name.backends) == [f"http://{ip}:8080" for ip in ips]
    assert fqdn.tls_passthrough and sorted(fqdn.backends) == [f"{ip}:8443" for ip in ips]
    assert not any(isinstance(d, ZMachine) for d in data)  # only the part and the gateways
    others = [
        w.data.subnet
        for c in changes
        if c.node_id != 3 and c.deployment is not None
        for w in c.deployment.workloads
        if isinstance(w.data, Network)
    ]
    assert len(others) == 2 and part.subnet not in others  # a /24 of its own
    assert len(part.peers) == 2  # peered with both machine nodes


def test_a_grid_without_a_gateway_node_says_so() -> None:
    with pytest.raises(PlacementError, match="no gateway node"):
        place(_spec(), [_offer(1), _offer(2)])


def test_gateway_items_stand_alone() -> None:
    items = {i.key: i for i in spec_items(_spec())}
    assert items["gateway/hello/0"].attached_to is None
