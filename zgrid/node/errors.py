"""Errors of zgrid.node.

NodeError
├── NodeConfigError     the node was started with settings it cannot use (capacity, paths, key)
├── SystemCommandError  a system tool (ip, runc, mount, losetup, mkfs, yggdrasil ...) failed;
│                       the message names the command and quotes what it printed
├── RuntimeFailure      the container runtime could not start, stop or inspect a container
├── NetworkFailure      a namespace, bridge, veth or the yggdrasil daemon could not be set up
└── ProvisionError      one workload cannot be made as asked; the message is the real cause
                        and travels to the deployer in the workload's result
    ├── CapacityExceeded  the workload asks for more than is free or than its contract declared
    └── GatewayError      the gateway's proxies (Caddy, HAProxy) cannot serve a route as asked:
        │                 a bad route, a proxy that does not start (with its log's tail)
        ├── HostTaken     the route's host is already another route's (both are named)
        └── PortTaken     an address:port the proxies listen on is another program's
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = [
    "CapacityExceeded",
    "GatewayError",
    "HostTaken",
    "NetworkFailure",
    "NodeConfigError",
    "NodeError",
    "PortTaken",
    "ProvisionError",
    "RuntimeFailure",
    "SystemCommandError",
]


class NodeError(ZgridError):
    """Root of the node package's errors."""


class NodeConfigError(NodeError):
    """The node's settings (flags, data directory, key file) cannot be used."""


class SystemCommandError(NodeError):
    """A system command exited non-zero or could not be started."""

    def __init__(self, argv: list[str], code: int | None, output: str) -> None:
        self.argv = argv
        self.code = code
        self.output = output
        shown = " ".join(argv[:6]) + (" …" if len(argv) > 6 else "")
        why = "could not be started" if code is None else f"exited with {code}"
        tail = output.strip().splitlines()[-3:]
        super().__init__(f"`{shown}` {why}" + (f": {' / '.join(tail)}" if tail else ""))


class RuntimeFailure(NodeError):
    """The container runtime (runc) failed to do what was asked."""


class NetworkFailure(NodeError):
    """Network namespaces, links, routes or yggdrasil could not be set up."""


class ProvisionError(NodeError):
    """A workload cannot be provisioned; ``str(error)`` is what the deployer reads."""


class CapacityExceeded(ProvisionError):
    """A workload asks for more capacity than the node has free or the contract declared."""


class GatewayError(ProvisionError):
    """The gateway's front door (Caddy and HAProxy) cannot serve a route as asked."""


class HostTaken(GatewayError):
    """The host is already routed by another route id."""

    def __init__(self, host: str, owner: str, claimant: str) -> None:
        self.host = host
        self.owner = owner
        self.claimant = claimant
        super().__init__(f"host {host} is already routed by {owner}; {claimant} cannot take it")


class PortTaken(GatewayError):
    """A listen address and port the proxies need is held by another program."""

    def __init__(self, address: str, port: int, holder: str = "") -> None:
        self.address = address
        self.port = port
        shown = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        super().__init__(f"{shown} is already taken by {holder or 'another program'}")
