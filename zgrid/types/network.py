"""Data of a network workload: this node's part of a private WireGuard network."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from pydantic import Field, StrictStr, field_validator, model_validator

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Model, Port, WireguardKey

__all__ = ["NODE_INTERFACE", "Network", "Peer", "parse_endpoint"]

NODE_INTERFACE = "zos"
"""The interface a node registers on the ledger with the addresses other nodes reach it
at: the endpoints of its networks' WireGuard links."""


def _ipv4_network(value: str, prefix: int, what: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{what} must be an IPv4 network like 10.20.0.0/{prefix}: {exc}") from exc
    if network.prefixlen != prefix:
        raise ValueError(f"{what} must be a /{prefix}, got /{network.prefixlen}")
    return value


def parse_endpoint(value: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[v6]:port`` into host and port, or raise ValueError."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"endpoint must be host:port, got {value!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"endpoint port must be 1-65535, got {port}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"endpoint has an unclosed '[': {value!r}")
        ipaddress.IPv6Address(host[1:-1])
        host = host[1:-1]
    return host, port


class Peer(Model):
    subnet: StrictStr
    wireguard_public_key: WireguardKey
    allowed_ips: list[StrictStr] = Field(min_length=1)
    endpoint: StrictStr = ""

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        return _ipv4_network(value, 24, "subnet")

    @field_validator("allowed_ips")
    @classmethod
    def _allowed(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                raise ValueError(f"allowed_ips entry {item!r} is not a network: {exc}") from exc
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value:
            parse_endpoint(value)
        return value


class Network(Model):
    TYPE: ClassVar[WorkloadType] = WorkloadType.NETWORK
    DATA_UPDATABLE: ClassVar[bool] = True

    ip_range: StrictStr
    subnet: StrictStr
    wireguard_private_key: WireguardKey
    wireguard_listen_port: Port
    peers: list[Peer] = Field(default_factory=list)

    @field_validator("ip_range")
    @classmethod
    def _range(cls, value: str) -> str:
        return _ipv4_network(value, 16, "ip_range")

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        return _ipv4_network(value, 24, "subnet")

    @model_validator(mode="after")
    def _inside_range(self) -> Network:
        ip_range = ipaddress.IPv4Network(self.ip_range)
        own = ipaddress.IPv4Network(self.subnet)
        if not own.subnet_of(ip_range):
            raise ValueError(f"subnet {self.subnet} is not inside ip_range {self.ip_range}")
        seen = {own}
        for index, peer in enumerate(self.peers):
            subnet = ipaddress.IPv4Network(peer.subnet)
            if not subnet.subnet_of(ip_range):
                raise ValueError(
                    f"peers[{index}].subnet {peer.subnet} is not inside ip_range {self.ip_range}"
                )
            if subnet in seen:
                raise ValueError(f"peers[{index}].subnet {peer.subnet} is used twice")
            seen.add(subnet)
        return self

    def capacity(self) -> Capacity:
        return Capacity()
