"""A machine's public IPs in the plan: an ip workload beside each replica, named by it, the
contract reserving one farm IPv4 per ip workload that asks for one."""

from __future__ import annotations

import pytest

from tests.client.test_changes import FLISTS, TWIN, machine, spread
from zgrid.client.changes import CurrentContract, plan_changes
from zgrid.client.errors import InvalidWorkload
from zgrid.client.items import spec_items
from zgrid.client.spec.model import Spec
from zgrid.types import Capacity, PublicIP, WorkloadType, ZMachine


def _spec(**fields: object) -> Spec:
    return Spec(name="app", machines=(machine(**fields),))


def test_each_replica_gets_an_ip_workload_that_its_machine_names() -> None:
    spec = _spec(replicas=2, public_ipv4=True, public_ipv6=True)
    ips = [item for item in spec_items(spec) if item.kind == "ip"]
    assert [(i.key, i.attached_to, i.capacity) for i in ips] == [
        ("ip/web/0", "machine/web/0", Capacity(ipv4=1)),
        ("ip/web/1", "machine/web/1", Capacity(ipv4=1)),
    ]
    changes = plan_changes(spec, spread(spec), twin_id=TWIN, flists=FLISTS, current={})
    assert len(changes) == 2
    for change in changes:
        assert change.deployment is not None
        assert change.public_ips == 1
        by_type = {w.type: w for w in change.deployment.workloads}
        ip, zmachine = by_type[WorkloadType.IP], by_type[WorkloadType.ZMACHINE]
        assert isinstance(ip.data, PublicIP) and ip.data.v4 and ip.data.v6
        assert isinstance(zmachine.data, ZMachine)
        assert zmachine.data.network.public_ip == ip.name
        assert ip.name.startswith("web_ip") and ip.name != zmachine.name


def test_ipv6_only_reserves_no_farm_ip() -> None:
    spec = _spec(public_ipv6=True)
    (change,) = plan_changes(spec, spread(spec), twin_id=TWIN, flists=FLISTS, current={})
    assert change.public_ips == 0
    assert [i.capacity for i in spec_items(spec) if i.kind == "ip"] == [Capacity()]


def test_adding_a_public_ipv4_to_a_running_contract_is_refused_clearly() -> None:
    before = _spec()
    (running,) = plan_changes(before, spread(before), twin_id=TWIN, flists=FLISTS, current={})
    assert running.deployment is not None and running.public_ips == 0
    after = _spec(public_ipv4=True)
    current = {running.node_id: CurrentContract(55, running.deployment)}
    with pytest.raises(InvalidWorkload, match="public IPs are fixed when it is created"):
        plan_changes(after, spread(after), twin_id=TWIN, flists=FLISTS, current=current)


def test_an_unchanged_spec_with_a_public_ip_keeps_everything() -> None:
    spec = _spec(public_ipv4=True)
    (first,) = plan_changes(spec, spread(spec), twin_id=TWIN, flists=FLISTS, current={})
    assert first.deployment is not None
    current = {first.node_id: CurrentContract(55, first.deployment)}
    (again,) = plan_changes(spec, spread(spec), twin_id=TWIN, flists=FLISTS, current=current)
    assert again.action == "keep"
