"""The ip primitive: IPv4s come from what the ledger reserved for the contract, in order,
never from the deployment; IPv6 from the node's /64, stable per workload."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from zgrid.node.errors import NodeConfigError, ProvisionError
from zgrid.node.net.public import PublicAddress, PublicNetwork, public_settings
from zgrid.node.primitives.base import Provisioning, WorkloadRef
from zgrid.node.primitives.publicip import IpPrimitive
from zgrid.types import Deployment

RESERVED = [PublicAddress("198.51.100.20/24", "198.51.100.1"), PublicAddress("198.51.100.21/24", "198.51.100.1")]  # fmt: skip


def _items(*ips: tuple[str, dict[str, Any]]) -> list[Provisioning]:
    doc: dict[str, Any] = {
        "version": 0,
        "twin_id": 7,
        "contract_id": 12,
        "signature_requirement": {
            "requests": [{"twin_id": 7, "required": True, "weight": 1}],
            "weight_required": 1,
            "signatures": [],
        },
        "workloads": [
            {"version": 0, "name": name, "type": "ip", "data": data} for name, data in ips
        ],
    }
    deployment = Deployment.model_validate(doc)
    return [Provisioning(WorkloadRef(7, 12, w.name), w, deployment) for w in deployment.workloads]


def _primitive(tmp_path: Path, reserved: list[PublicAddress]) -> IpPrimitive:
    settings = public_settings("eth1", ip6="2001:db8:113::2/64", gateway6="2001:db8:113::1")

    async def lookup(contract_id: int) -> list[PublicAddress]:
        assert contract_id == 12
        return reserved

    return IpPrimitive(tmp_path, public=PublicNetwork(settings, scope="t"), reserved=lookup)


def test_ipv4s_are_the_contracts_in_the_order_of_the_workloads_names(tmp_path: Path) -> None:
    second, first = _items(("web_ip_1", {"v4": True}), ("web_ip_0", {"v4": True, "v6": True}))
    ips = _primitive(tmp_path, RESERVED)
    result = asyncio.run(ips.provision(first))
    assert (result["ip"], result["gateway"]) == ("198.51.100.20/24", "198.51.100.1")
    v6 = ipaddress.ip_interface(result["ip6"])
    assert v6.network == ipaddress.ip_network("2001:db8:113::/64") and result["gateway6"]
    assert asyncio.run(ips.provision(first)) == result  # the same again
    assert asyncio.run(ips.provision(second))["ip"] == "198.51.100.21/24"
    assert ips.addresses(first.ref)[0].cidr == "198.51.100.20/24"
    assert asyncio.run(ips.present()) == {first.ref.id, second.ref.id}
    asyncio.run(ips.deprovision(first.ref))
    assert not asyncio.run(ips.inspect(first.ref)).exists
    assert ips.addresses(first.ref) == ()


def test_more_ipv4_workloads_than_reserved_ips_are_refused(tmp_path: Path) -> None:
    one, two = _items(("a_ip", {"v4": True}), ("b_ip", {"v4": True}))
    ips = _primitive(tmp_path, RESERVED[:1])
    asyncio.run(ips.provision(one))
    with pytest.raises(ProvisionError, match="reserved 1 public IPv4 on the ledger, but 2"):
        asyncio.run(ips.provision(two))


def test_public_settings_name_what_is_wrong() -> None:
    with pytest.raises(NodeConfigError, match="--public-interface"):
        public_settings("", ip="198.51.100.2/24", gateway="198.51.100.1")
    with pytest.raises(NodeConfigError, match="go together"):
        public_settings("eth1", ip="198.51.100.2/24")
    with pytest.raises(NodeConfigError, match="not another address"):
        public_settings("eth1", ip="198.51.100.2/24", gateway="192.0.2.1")
    with pytest.raises(NodeConfigError, match="needs the prefix"):
        public_settings("eth1", ip="198.51.100.2", gateway="198.51.100.1")
    with pytest.raises(NodeConfigError, match="is for gateway nodes"):
        public_settings("eth1", domain="gw.example.org")
    with pytest.raises(NodeConfigError, match="not a domain name"):
        public_settings("eth1", ip="198.51.100.2/24", gateway="198.51.100.1", domain="no_t")
    good = public_settings(
        "eth1", ip="198.51.100.2/24", gateway="198.51.100.1", domain="GW.Example.org."
    )
    assert good.domain == "gw.example.org" and good.own[0].ip == "198.51.100.2"
