"""Networks in the store's clear part: no key needed, names and URLs checked."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from zgrid.client import NetworkConfig, NetworkNotConfigured, Store, StoreError

LEDGER = "http://127.0.0.1:8700"


def test_networks_need_no_key(home: Path) -> None:
    store = Store(home)  # no unlocker at all
    with pytest.raises(
        NetworkNotConfigured,
        match=r"^no network configured: run `zgrid network add NAME --ledger URL`$",
    ):
        store.network()
    store.add_network(NetworkConfig("devnet", LEDGER, hub="http://127.0.0.1:8780"))
    assert store.current_network == "devnet"  # the first one added
    store.add_network(
        NetworkConfig("main", "https://ledger.example:443/api", explorer="https://x.example")
    )
    assert store.current_network == "devnet"
    assert [network.name for network in store.networks()] == ["devnet", "main"]
    assert store.network().hub == "http://127.0.0.1:8780"
    store.use_network("main")
    assert Store(home).network() == NetworkConfig(
        "main", "https://ledger.example:443/api", explorer="https://x.example"
    )
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    assert not (home / "store.json").exists()  # no key was made or asked for


def test_remove_and_replace(home: Path) -> None:
    store = Store(home)
    store.add_network(NetworkConfig("devnet", LEDGER))
    with pytest.raises(StoreError, match="network 'devnet' already exists; refusing"):
        store.add_network(NetworkConfig("devnet", "http://127.0.0.1:9999"))
    store.add_network(
        NetworkConfig("devnet", "http://127.0.0.1:9999", identity="ops"), overwrite=True
    )
    assert store.network("devnet").identity == "ops"
    store.add_network(NetworkConfig("other", LEDGER))
    store.remove_network("devnet")
    assert store.current_network is None
    with pytest.raises(NetworkNotConfigured, match=r"no current network: run `zgrid network use"):
        store.network()
    with pytest.raises(NetworkNotConfigured, match=r"no network 'devnet' .* \(configured: other\)"):
        store.remove_network("devnet")
    with pytest.raises(NetworkNotConfigured, match="add it with `zgrid network add nope"):
        store.use_network("nope")


@pytest.mark.parametrize("name", ["", "Dev", "-dev", "dev_net", "a" * 33, "dev net", "dév", "../x"])
def test_bad_network_names(name: str) -> None:
    with pytest.raises(StoreError, match="is not a valid network name"):
        NetworkConfig(name, LEDGER)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host", "must be http"),
        ("http://", "must be http"),
        ("127.0.0.1:8700", "must be http"),
        ("http://host:99999", "is not a URL"),
        ("http://user:secret@host", "must not hold a user name or password"),
        ("http://host/a b", "spaces or control characters"),
        ("http://host/\n", "spaces or control characters"),
        ("http://h/" + "a" * 3000, "longer than 2048"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        NetworkConfig("dev", url)
    with pytest.raises(StoreError, match=message):
        NetworkConfig("dev", LEDGER, hub=url)


def test_a_network_signs_as_a_named_identity() -> None:
    assert NetworkConfig("dev", LEDGER).identity == "default"
    with pytest.raises(StoreError, match="not a valid identity name"):
        NetworkConfig("dev", LEDGER, identity="Not Valid")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"version": 2}',
        '{"version": 1, "networks": {"Bad Name": {"ledger": "http://h"}}}',
        '{"version": 1, "networks": {"dev": {"ledger": "gopher://h"}}}',
        '{"version": 1, "networks": {}, "current": "ghost"}',
        '{"version": 1, "networks": []}',
    ],
)
def test_a_damaged_config_is_named(home: Path, content: str) -> None:
    home.mkdir()
    (home / "config.json").write_text(content)
    with pytest.raises(StoreError, match=f"{home / 'config.json'} is damaged"):
        Store(home).networks()


def test_an_oversized_config_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"pad": "x" * 300_000}))
    with pytest.raises(StoreError, match="is larger than"):
        Store(home).networks()
