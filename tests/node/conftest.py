"""Fixtures of the node's tests: hosts on a shared bridge, a yggdrasil client among them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_root, require_tool
from tests.node.hosts import Host, HostNetwork


@pytest.fixture(scope="module")
def host_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostNetwork]:
    """A bridge in the root netns (gateway .1) on which a test module adds its hosts."""
    require_root()
    for tool in ("ip", "nsenter", "sysctl"):
        require_tool(tool)
    with HostNetwork(tmp_path_factory.mktemp("hosts")) as network:
        yield network


@pytest.fixture(scope="module")
def client_host(host_network: HostNetwork) -> Host:
    """A host running yggdrasil that listens; node hosts peer with its ``yggdrasil_uri``."""
    require_tool("yggdrasil")
    require_tool("yggdrasilctl")
    return host_network.add_client()
