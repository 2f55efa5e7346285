"""The devnet's nodes: `zgrid node run` in each host namespace, peered with the host's
yggdrasil, joined to the devnet's farm with a token its farmer signs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from zgrid.devnet.ca import CertificateAuthority, ensure_ca
from zgrid.devnet.layout import YGGDRASIL_PORT, DevnetState, Layout
from zgrid.devnet.network import GATEWAY_DOMAIN, HostNetns
from zgrid.devnet.processes import Daemon
from zgrid.node import NodeError, load_or_create_node_identity
from zgrid.types import GIB

if TYPE_CHECKING:
    from zgrid.devnet.accounts import Accounts

__all__ = ["NODE_CAPACITY", "NodeProcess", "node_data_dirs"]

# What each node offers: several nodes share this machine, so each offers a slice of it.
# 30 GiB of SSD: the explorer lists a node's SSD less 20 GiB for the node itself (FORMATS.md),
# so 10 GiB show free to the planner. Only a number: the node's disk images are sparse files
# of what contracts ask, nothing is allocated for what it declares.
NODE_CAPACITY = f"cru=2,mru={4 * GIB},sru={30 * GIB},hru={10 * GIB}"
_NODE_TOKENS = 10  # for its transaction fees
_READY = re.compile(r"node (\d+) \(twin \d+, farm \d+\) follows")
_READY_TIMEOUT = 120.0


class NodeProcess:
    """One node of the devnet: its host, its data directory and its daemon."""

    def __init__(self, layout: Layout, state: DevnetState, host: HostNetns) -> None:
        self.host = host
        self.state = state
        self.data = layout.node_dir(host.name)
        self.ca_dir = layout.ca
        self.daemon = Daemon(host.name, layout.pid_file(host.name), layout.log(host.name))
        self._log_offset = 0  # where this start's lines begin in the daemon's log

    @property
    def name(self) -> str:
        return self.host.name

    def address(self) -> str:
        """The node's account on the ledger (its key is made on first use)."""
        return load_or_create_node_identity(self.data).address

    def known_address(self) -> str:
        """The node's account if its key exists yet ("" before its first start): a status
        reads, it makes nothing."""
        if not (self.data / "identity").is_dir():
            return ""
        try:
            return self.address()
        except NodeError:
            return ""  # a damaged key: the node's own start says what is wrong

    def node_id(self) -> int | None:
        """The node's id on the ledger, as its daemon last said it."""
        try:
            text = self.daemon.log.read_text(errors="replace")
        except OSError:
            return None
        found = _READY.findall(text)
        return int(found[-1]) if found else None

    async def start(self, accounts: Accounts) -> None:
        """Fund the node's account, sign it a join token and start its daemon (not waited for)."""
        from zgrid.chain import UNITS_PER_TOKEN, ChainClient, issue_join_token  # noqa: PLC0415

        address = self.address()
        async with ChainClient(self.state.ledger_url, identity=accounts.farmer) as chain:
            account = await chain.account(address)
            if int(account.get("free", 0)) < _NODE_TOKENS * UNITS_PER_TOKEN // 2:
                await chain.transfer(address, _NODE_TOKENS * UNITS_PER_TOKEN)
            head = await chain.head()
        token = issue_join_token(
            accounts.farmer,
            chain_id=str(head["chain_id"]),
            farm_id=accounts.farm_id,
            expires=int(head["timestamp"]) + 24 * 3600,
            node=address,
        )
        self._log_offset = self.daemon.log.stat().st_size if self.daemon.log.exists() else 0
        argv = [
            sys.executable, "-m", "zgrid", "node", "run",
            "--farm", str(accounts.farm_id),
            "--ledger", self.state.ledger_url,
            "--hub", self.state.hub_url,
            "--data", str(self.data),
            "--capacity", NODE_CAPACITY,
            "--join-token", token.encode(),
            "--yggdrasil-listen", f"tcp://{self.host.address}:{YGGDRASIL_PORT}",
            "--yggdrasil-peer", f"tcp://{self.state.gateway}:{YGGDRASIL_PORT}",
            *public_flags(self.state, self.host.number, ensure_ca(self.ca_dir)),
        ]  # fmt: skip
        self.daemon.start(self.host.command(argv))

    def wait_ready(self) -> int:
        """Wait until the daemon follows the ledger; returns its node id."""
        offset = self._log_offset

        def ready() -> bool:
            try:
                with self.daemon.log.open("rb") as log:
                    log.seek(offset)
                    return _READY.search(log.read().decode(errors="replace")) is not None
            except OSError:
                return False

        self.daemon.wait_until(ready, timeout=_READY_TIMEOUT, what="join the ledger")
        node_id = self.node_id()
        assert node_id is not None
        return node_id


def public_flags(state: DevnetState, number: int, ca: CertificateAuthority) -> list[str]:
    """Node ``number``'s public side: every node bridges the farm's segment (for machines'
    public IPs) with an IPv6 of its own there; node 1 is also the gateway node, with a public
    IPv4 and the devnet's domain, issuing its gateways' certificates from the devnet's CA."""
    flags = ["--public-interface", "eth1"]
    if state.public_prefix6:
        flags += ["--public-ip6", state.node_public_ip6(number)]
        flags += ["--public-gateway6", state.farm_gateway6]
    if number == 1:
        flags += ["--public-ip", state.gateway_node_ip, "--public-gateway", state.farm_gateway]
        flags += ["--domain", GATEWAY_DOMAIN]
        flags += ["--gateway-ca", str(ca.certificate), "--gateway-ca-key", str(ca.key)]
    return flags


def node_data_dirs(layout: Layout) -> list[Path]:
    """Every node data directory under the devnet (also of nodes beyond its count)."""
    root = layout.root / "nodes"
    return sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
