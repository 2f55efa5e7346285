"""The store's clear part: the networks a deployer uses (``config.json``) and name rules.

``config.json`` holds no secret: each network's ledger, hub and explorer URLs, the name of
the identity that signs on it, and which network is the current one. It is read without
any key, so ``zgrid network ls`` never asks for a passphrase.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from zgrid.client.errors import StoreError

__all__ = [
    "IDENTITY_NAME",
    "NETWORK_NAME",
    "RECORD_NAME",
    "ConfigDocument",
    "NetworkConfig",
    "check_name",
    "check_url",
    "parse_config",
    "render_config",
]

NETWORK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
IDENTITY_NAME = NETWORK_NAME
RECORD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_URL_LENGTH = 2048
MAX_NETWORKS = 256
_CONFIG_VERSION = 1


def check_name(value: object, what: str, pattern: re.Pattern[str] = NETWORK_NAME) -> str:
    """``value`` if it is a valid name of ``what``, else StoreError saying the rule."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        limit = 63 if pattern is RECORD_NAME else 32
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise StoreError(
            f"{shown} is not a valid {what} name: 1 to {limit} lowercase letters, digits or "
            "'-', starting with a letter or digit"
        )
    return value


def check_url(value: object, what: str) -> str:
    """``value`` if it is an http(s)://HOST[:PORT][/path] URL, else StoreError saying why."""
    if not isinstance(value, str):
        raise StoreError(f"the {what} URL must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise StoreError(f"the {what} URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise StoreError(f"the {what} URL {value!r} holds spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # reading the port parses it: a bad one raises here
    except ValueError as exc:
        raise StoreError(f"the {what} URL {value!r} is not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"the {what} URL must be http(s)://HOST[:PORT][/PATH], got {value!r}")
    if parts.username is not None or parts.password is not None:
        # config.json is kept in clear: a password in a URL would be a secret on disk.
        raise StoreError(f"the {what} URL must not hold a user name or password")
    return value


@dataclass(frozen=True)
class NetworkConfig:
    """One network: where its ledger, hub and explorer answer, and who signs on it."""

    name: str
    ledger: str
    hub: str | None = None
    explorer: str | None = None
    identity: str = "default"

    def __post_init__(self) -> None:
        check_name(self.name, "network")
        check_url(self.ledger, "ledger")
        if self.hub is not None:
            check_url(self.hub, "hub")
        if self.explorer is not None:
            check_url(self.explorer, "explorer")
        check_name(self.identity, "identity", IDENTITY_NAME)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfigDocument:
    """What ``config.json`` holds: the networks by name and the current one."""

    networks: dict[str, NetworkConfig]
    current: str | None


def parse_config(raw: bytes, source: str) -> ConfigDocument:
    """``config.json``'s content checked; StoreError naming ``source`` when it is damaged."""
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("version") != _CONFIG_VERSION:
            raise StoreError("not a version 1 zgrid config")
        entries = document.get("networks", {})
        current = document.get("current")
        if not isinstance(entries, dict) or len(entries) > MAX_NETWORKS:
            raise StoreError("'networks' must be an object of at most 256 networks")
        networks: dict[str, NetworkConfig] = {}
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise StoreError(f"network {name!r} is not an object")
            networks[name] = NetworkConfig(
                name=name,
                ledger=entry.get("ledger", ""),
                hub=entry.get("hub"),
                explorer=entry.get("explorer"),
                identity=entry.get("identity", "default"),
            )
        if current is not None and current not in networks:
            raise StoreError(f"the current network {current!r} is not configured")
    except (ValueError, StoreError, TypeError) as exc:
        raise StoreError(f"{source} is damaged: {exc}") from exc
    return ConfigDocument(networks=networks, current=current)


def render_config(config: ConfigDocument) -> bytes:
    networks = {
        name: {key: value for key, value in network.to_json().items() if key != "name"}
        for name, network in sorted(config.networks.items())
    }
    document = {"version": _CONFIG_VERSION, "current": config.current, "networks": networks}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
