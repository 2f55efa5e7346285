"""Invalid deployments: each gets an InvalidDeployment naming the field and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import WG_KEY, deployment_doc, network_data, workload_doc, zmachine_data
from zgrid.types import GIB, MIB, Deployment, InvalidDeployment, parse_deployment


def refused(doc: dict[str, Any] | bytes | str) -> InvalidDeployment:
    with pytest.raises(InvalidDeployment) as caught:
        parse_deployment(doc)
    return caught.value


def test_the_factory_document_is_valid() -> None:
    deployment = parse_deployment(deployment_doc())
    assert isinstance(deployment, Deployment)
    assert [w.type for w in deployment.workloads] == [
        "zmount", "volume", "network", "ip", "zdb", "zmachine",
        "gateway-name-proxy", "gateway-fqdn-proxy",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["has space", "dash-name", "", "x" * 37, "ünïcode"])
def test_bad_workload_name(name: str) -> None:
    doc = deployment_doc()
    doc["workloads"][0]["name"] = name
    error = refused(doc)
    assert error.field == "workloads[0].name"


def test_longest_allowed_name() -> None:
    doc = deployment_doc()
    doc["workloads"][1]["name"] = "x" * 36
    parse_deployment(doc)


def test_duplicate_workload_name() -> None:
    doc = deployment_doc()
    doc["workloads"][1]["name"] = "disk"
    error = refused(doc)
    assert error.field == "workloads[1].name"
    assert "duplicate workload name 'disk'" in str(error)


def test_cpu_zero() -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"]["compute_capacity"]["cpu"] = 0
    error = refused(doc)
    assert error.field == "workloads[5].data.compute_capacity.cpu"
    assert "cpu must be between 1 and 256 cores, got 0" in str(error)


def test_memory_below_250_mib() -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"]["compute_capacity"]["memory"] = 249 * MIB
    error = refused(doc)
    assert error.field == "workloads[5].data.compute_capacity.memory"
    assert "at least 250 MiB" in str(error)
    assert "got 249 MiB" in str(error)


def test_memory_exactly_250_mib_is_fine() -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"]["compute_capacity"]["memory"] = 250 * MIB
    parse_deployment(doc)


def test_unknown_type() -> None:
    doc = deployment_doc()
    doc["workloads"][2]["type"] = "kubernetes"
    error = refused(doc)
    assert error.field == "workloads[2].type"
    assert "unknown workload type 'kubernetes'" in str(error)


def test_missing_type() -> None:
    doc = deployment_doc()
    del doc["workloads"][0]["type"]
    assert refused(doc).field == "workloads[0].type"


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"),
    [
        (("compute_capacity", "cpu"), "2", "compute_capacity.cpu", "whole number"),
        (("compute_capacity", "memory"), 1.5 * GIB, "compute_capacity.memory", "number of bytes"),
        (("size",), -1, "size", "greater than or equal to 0"),
        (("mode",), "lxc", "mode", "'container' or 'vm'"),
        (("flist",), "", "flist", "at least 1 character"),
        (("env",), {"1BAD": "x"}, "env", "environment variable name '1BAD'"),
        (("mounts",), [{"name": "disk", "mountpoint": "data"}], "mounts[0].mountpoint", "absolute"),
        (("mounts",), [{"name": "disk", "mountpoint": "/a/../b"}], "mounts[0].mountpoint", ".."),
        (
            ("mounts",),
            [{"name": "disk", "mountpoint": "/a"}, {"name": "disk", "mountpoint": "/b"}],
            "mounts",
            "disk mounted twice: disk",
        ),
        (
            ("network", "interfaces"),
            [{"network": "a", "ip": "10.1.3.2"}, {"network": "b", "ip": "10.1.4.2"}],
            "network.interfaces",
            "at most one private interface",
        ),
        (
            ("network", "interfaces"),
            [{"network": "ygg", "ip": "10.1.3.2"}],
            "network.interfaces[0].network",
            "reserved",
        ),
        (
            ("network", "interfaces"),
            [{"network": "net", "ip": "10.1.3.300"}],
            "network.interfaces[0].ip",
            "IPv4 address",
        ),
        (("network", "planetary"), 1, "network.planetary", "boolean"),
        (("surprise",), 1, "surprise", "unknown field"),
    ],
)
def test_zmachine_field_errors(
    path: tuple[str, ...], value: Any, field: str, fragment: str
) -> None:
    doc = deployment_doc()
    data = workload_doc(doc, "vm")["data"]
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    error = refused(doc)
    assert error.field == f"workloads[5].data.{field}", error
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"mounts": [{"name": "nothere", "mountpoint": "/x"}]}, "mounts[0].name", "no zmount or volume named 'nothere'"),
        ({"mounts": [{"name": "store", "mountpoint": "/x"}]}, "mounts[0].name", "no zmount or volume named 'store'"),
        ({"network": {"interfaces": [{"network": "net", "ip": "10.1.3.2"}], "public_ip": "vm"}}, "network.public_ip", "no ip workload named 'vm'"),
        ({"network": {"interfaces": [{"network": "net", "ip": "10.1.9.2"}]}}, "network.interfaces[0].ip", "not in the network's subnet 10.1.3.0/24"),
        ({"network": {"interfaces": [{"network": "net", "ip": "10.1.3.1"}]}}, "network.interfaces[0].ip", "reserved"),
    ],
)  # fmt: skip
def test_references_between_workloads(change: dict[str, Any], field: str, fragment: str) -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"] = zmachine_data(**change)
    error = refused(doc)
    assert error.field == f"workloads[5].data.{field}"
    assert fragment in str(error)


def test_a_disk_mounted_by_two_machines() -> None:
    doc = deployment_doc()
    data = zmachine_data()
    data["network"]["public_ip"] = ""
    second = {"version": 0, "name": "vm2", "type": "zmachine", "data": data}
    doc["workloads"].append(second)
    error = refused(doc)
    assert error.field == "workloads[8].data.mounts[0].name"
    assert "already mounted by 'vm'" in str(error)


def test_interface_on_a_network_of_another_deployment_is_accepted() -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"]["network"]["interfaces"] = [
        {"network": "other", "ip": "10.9.9.9"}
    ]
    parse_deployment(doc)


def test_reserved_network_workload_name() -> None:
    doc = deployment_doc()
    workload_doc(doc, "net")["name"] = "pub"
    workload_doc(doc, "vm")["data"]["network"]["interfaces"] = [
        {"network": "other", "ip": "10.9.9.9"}
    ]
    doc["workloads"][6]["data"]["network"] = ""
    error = refused(doc)
    assert error.field == "workloads[2].name"
    assert "reserved" in str(error)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"ip_range": "10.1.0.0/24"}, "ip_range", "must be a /16"),
        ({"ip_range": "10.1.2.0/16"}, "ip_range", "host bits set"),
        ({"subnet": "10.2.3.0/24"}, "", "not inside ip_range"),
        ({"wireguard_private_key": "short"}, "wireguard_private_key", "base64 WireGuard key"),
        ({"wireguard_private_key": "AAAA"}, "wireguard_private_key", "32 bytes, got 3"),
        ({"wireguard_listen_port": 0}, "wireguard_listen_port", "greater than or equal to 1"),
        ({"wireguard_listen_port": 70000}, "wireguard_listen_port", "less than or equal to 65535"),
        ({"peers": [{"subnet": "10.1.3.0/24", "wireguard_public_key": WG_KEY, "allowed_ips": ["10.1.3.0/24"]}]}, "", "used twice"),
        ({"peers": [{"subnet": "10.9.3.0/24", "wireguard_public_key": WG_KEY, "allowed_ips": ["10.9.3.0/24"]}]}, "", "not inside ip_range"),
        ({"peers": [{"subnet": "10.1.5.0/24", "wireguard_public_key": WG_KEY, "allowed_ips": ["nope"]}]}, "peers[0].allowed_ips", "not a network"),
        ({"peers": [{"subnet": "10.1.5.0/24", "wireguard_public_key": WG_KEY, "allowed_ips": ["10.1.5.0/24"], "endpoint": "host"}]}, "peers[0].endpoint", "host:port"),
        ({"peers": [{"subnet": "10.1.5.0/24", "wireguard_public_key": WG_KEY, "allowed_ips": ["10.1.5.0/24"], "endpoint": "[::1:9"}]}, "peers[0].endpoint", "unclosed"),
    ],
)  # fmt: skip
def test_network_errors(change: dict[str, Any], field: str, fragment: str) -> None:
    doc = deployment_doc()
    workload_doc(doc, "net")["data"] = network_data(**change)
    error = refused(doc)
    assert error.field == "workloads[2].data" + (f".{field}" if field else "")
    assert fragment in str(error)


def test_network_ipv6_endpoint_is_accepted() -> None:
    doc = deployment_doc()
    peer = network_data()["peers"][0] | {"endpoint": "[2001:db8::1]:3011"}
    workload_doc(doc, "net")["data"] = network_data(peers=[peer])
    parse_deployment(doc)


@pytest.mark.parametrize(
    ("name", "data", "field", "fragment"),
    [
        ("store", {"size": 0}, "size", "greater than 0"),
        ("store", {"size": GIB, "mode": "fast"}, "mode", "'user' or 'seq'"),
        ("disk", {"size": 0}, "size", "greater than 0"),
        ("vol", {"size": "1G"}, "size", "valid integer"),
        ("pubip", {"v4": False, "v6": False}, "", "v4, v6 or both"),
        ("web", {"name": "A!", "backends": ["http://1.2.3.4:80"]}, "name", "3-64 characters"),
        ("web", {"name": "myapp", "backends": []}, "backends", "at least 1 item"),
        ("web", {"name": "myapp", "backends": ["1.2.3.4:80"]}, "", "http:// or https:// URL"),
        ("web", {"name": "myapp", "backends": ["http://1.2.3.4:99999"]}, "", "invalid port"),
        ("site", {"fqdn": "localhost", "backends": ["http://1.2.3.4"]}, "fqdn", "domain name"),
        ("site", {"fqdn": "a.example.com", "tls_passthrough": True, "backends": ["http://1.2.3.4"]}, "", "host:port when tls_passthrough"),
    ],
)  # fmt: skip
def test_other_workload_errors(name: str, data: dict[str, Any], field: str, fragment: str) -> None:
    doc = deployment_doc()
    index = next(i for i, w in enumerate(doc["workloads"]) if w["name"] == name)
    doc["workloads"][index]["data"] = data
    error = refused(doc)
    assert error.field == f"workloads[{index}].data" + (f".{field}" if field else "")
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"twin_id": 0}, "twin_id", "greater than 0"),
        ({"version": -1}, "version", "greater than or equal to 0"),
        ({"version": True}, "version", "valid integer"),
        ({"signature_requirement": {"requests": [], "weight_required": 1}}, "signature_requirement.requests", "at least 1 item"),
        ({"signature_requirement": {"requests": [{"twin_id": 1, "weight": 1}], "weight_required": 2}}, "signature_requirement", "could never be reached"),
        ({"signature_requirement": {"requests": [{"twin_id": 1}, {"twin_id": 1}], "weight_required": 1}}, "signature_requirement", "twin 1 is requested twice"),
        ({"signature_requirement": {"requests": [{"twin_id": 1}], "signatures": [{"twin_id": 1, "signature": "ab"}]}}, "signature_requirement.signatures[0].signature", "pattern"),
        ({"signature_requirement": {"requests": [{"twin_id": 1}], "signatures": [{"twin_id": 1, "signature": "ab" * 64, "signature_type": "sr25519"}]}}, "signature_requirement.signatures[0].signature_type", "only ed25519"),
        ({"bogus": 1}, "bogus", "unknown field"),
    ],
)  # fmt: skip
def test_deployment_level_errors(change: dict[str, Any], field: str, fragment: str) -> None:
    error = refused(deployment_doc(**change))
    assert error.field == field
    assert fragment in str(error)


def test_workload_version_newer_than_deployment() -> None:
    doc = deployment_doc()
    doc["workloads"][0]["version"] = 1
    error = refused(doc)
    assert error.field == "workloads[0].version"


def test_every_problem_is_reported_at_once() -> None:
    doc = deployment_doc()
    workload_doc(doc, "vm")["data"]["compute_capacity"] = {"cpu": 0, "memory": 1}
    doc["workloads"][0]["type"] = "nope"
    error = refused(doc)
    fields = [field for field, _ in error.problems]
    assert fields == [
        "workloads[0].type",
        "workloads[5].data.compute_capacity.cpu",
        "workloads[5].data.compute_capacity.memory",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [(b"{", "not valid JSON"), (b"[1]", "JSON object"), (b'{"twin_id": 1.0}', "float")],
)
def test_bad_json_text(text: bytes, fragment: str) -> None:
    error = refused(text)
    assert error.field == "$"
    assert fragment in str(error)


def test_direct_construction_raises_the_same_error() -> None:
    with pytest.raises(InvalidDeployment, match="twin_id"):
        Deployment.model_validate(
            {"twin_id": -5, "signature_requirement": {"requests": [{"twin_id": 1}]}}
        )
