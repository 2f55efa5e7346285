"""Data of the gateway workloads: a reverse proxy by grid name or by the user's own domain."""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, StrictStr, field_validator, model_validator

from zgrid.types.capacity import Capacity
from zgrid.types.enums import WorkloadType
from zgrid.types.fields import Bool, Model
from zgrid.types.network import parse_endpoint

__all__ = ["GatewayFQDNProxy", "GatewayNameProxy"]

_GATEWAY_NAME = re.compile(r"^[a-z0-9_-]{3,64}$")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _check_backends(backends: list[str], tls_passthrough: bool) -> None:
    # With passthrough the gateway forwards raw TLS, so a backend is host:port;
    # otherwise it terminates TLS and speaks HTTP to an http:// URL.
    for backend in backends:
        if tls_passthrough:
            try:
                parse_endpoint(backend)
            except ValueError as exc:
                raise ValueError(
                    f"backend {backend!r} must be host:port when tls_passthrough is on"
                ) from exc
            continue
        parts = urlsplit(backend)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend {backend!r} must be an http:// or https:// URL")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"backend {backend!r} has an invalid port") from exc


class _GatewayBase(Model):
    tls_passthrough: Bool = False
    backends: list[StrictStr] = Field(min_length=1, max_length=32)
    network: StrictStr = Field(default="", description="private network to reach backends")

    @model_validator(mode="after")
    def _backends(self) -> _GatewayBase:
        _check_backends(self.backends, self.tls_passthrough)
        return self

    def capacity(self) -> Capacity:
        return Capacity()


class GatewayNameProxy(_GatewayBase):
    TYPE: ClassVar[WorkloadType] = WorkloadType.GATEWAY_NAME_PROXY
    DATA_UPDATABLE: ClassVar[bool] = False

    name: StrictStr

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _GATEWAY_NAME.fullmatch(value):
            raise ValueError(
                f"gateway name must be 3-64 characters of a-z, 0-9, '-' and '_', got {value!r}"
            )
        return value


class GatewayFQDNProxy(_GatewayBase):
    TYPE: ClassVar[WorkloadType] = WorkloadType.GATEWAY_FQDN_PROXY
    DATA_UPDATABLE: ClassVar[bool] = False

    fqdn: StrictStr

    @field_validator("fqdn")
    @classmethod
    def _fqdn(cls, value: str) -> str:
        labels = value.removesuffix(".").split(".")  # one trailing root dot at most
        if len(value) > 253 or len(labels) < 2 or not all(_DNS_LABEL.fullmatch(x) for x in labels):
            raise ValueError(
                f"fqdn must be a lower-case domain name like app.example.com, got {value!r}"
            )
        return value
