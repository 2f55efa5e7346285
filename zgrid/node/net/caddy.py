"""Caddy, the gateway's HTTP side: its JSON configuration built from the routes, and its
detached process, driven through the admin API on a unix socket (never a TCP port).

Caddy terminates TLS for name routes on a loopback port that HAProxy forwards to, and
listens on :80 of the public addresses to redirect known hosts to HTTPS and to answer
ACME HTTP-01 challenges (which Caddy handles before any route). A configuration is
pushed whole with POST /load: Caddy applies it atomically, keeps the old one when the new
one fails, and does nothing when it is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from zgrid.atomic import write_atomic
from zgrid.node.errors import GatewayError, PortTaken
from zgrid.node.net import detached
from zgrid.node.net.proxyroute import Backend, ProxyRoute, TlsIssuer

__all__ = ["CA_NAME", "Caddy", "caddy_config"]

CA_NAME = "zgrid"  # the pki app's CA that signs internal certificates
_START_TIMEOUT = 20.0
_ADMIN_TIMEOUT = 30.0  # a /load returns once every listener is bound
_POLL = 0.05
_BIND_FAILED = re.compile(r"listen tcp (\S+): bind: address already in use")
# Caddy answers an empty 200 when no route matches; a host it does not serve is a 404.
_NOT_FOUND: dict[str, Any] = {"handle": [{"handler": "static_response", "status_code": 404}]}


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _dial(backend: Backend) -> str:
    return f"unix/{backend.path}" if backend.path else backend.hostport


def _proxy(route: ProxyRoute) -> dict[str, Any]:
    backends = route.parsed_backends()
    handler: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": _dial(backend)} for backend in backends],
        # Round-robin like HAProxy; a backend that refuses is skipped for a while and the
        # request tried on the next one.
        "load_balancing": {"selection_policy": {"policy": "round_robin"}, "try_duration": "2s"},
        "health_checks": {"passive": {"fail_duration": "10s"}},
    }
    if any(backend.tls for backend in backends):
        # A backend is reached by a machine's address, which no public certificate names,
        # and it sits on the deployer's own network: the TLS is kept, its check is not.
        handler["transport"] = {"protocol": "http", "tls": {"insecure_skip_verify": True}}
    return {"match": [{"host": [route.host]}], "handle": [handler], "terminal": True}


def _redirects(hosts: Sequence[str]) -> list[dict[str, Any]]:
    redirect = {
        "handler": "static_response",
        "status_code": 308,
        "headers": {"Location": ["https://{http.request.host}{http.request.uri}"]},
    }
    routes = [{"match": [{"host": list(hosts)}], "handle": [redirect], "terminal": True}]
    return [*(routes if hosts else []), _NOT_FOUND]


def _tls_apps(hosts: Sequence[str], issuer: TlsIssuer) -> dict[str, Any]:
    if issuer.kind == "internal":
        chosen: dict[str, Any] = {"module": "internal", "ca": CA_NAME}
    else:
        chosen = {"module": "acme"}
        if issuer.acme_directory:
            chosen["ca"] = issuer.acme_directory
        if issuer.acme_email:
            chosen["email"] = issuer.acme_email
    # Only the routed hosts: a policy without subjects would cover every name.
    policies = [{"subjects": list(hosts), "issuers": [chosen]}] if hosts else []
    apps: dict[str, Any] = {"tls": {"automation": {"policies": policies}}}
    if issuer.kind == "internal":
        root = {
            "certificate": str(issuer.ca_certificate),
            "private_key": str(issuer.ca_key),
            "format": "pem_file",
        }
        apps["pki"] = {
            "certificate_authorities": {
                # Caddy makes its "local" CA whenever the pki app runs and would install it
                # in the machine's trust store: never on a node.
                "local": {"install_trust": False},
                CA_NAME: {"name": "zgrid gateway", "root": root, "install_trust": False},
            }
        }
    return apps


def caddy_config(
    routes: Sequence[ProxyRoute],
    *,
    listen: Sequence[str],
    issuer: TlsIssuer,
    internal_port: int,
    admin_socket: Path,
    storage: Path,
    log: Path,
) -> dict[str, Any]:
    """Caddy's whole configuration for these routes (passthrough ones only redirect on :80)."""
    served = sorted((route for route in routes if not route.tls_passthrough), key=lambda r: r.host)
    hosts = [route.host for route in served]
    https = {
        "listen": [f"127.0.0.1:{internal_port}"],
        "protocols": ["h1", "h2"],  # no HTTP/3: HAProxy forwards TCP only, QUIC never arrives
        "tls_connection_policies": [{}],  # TLS even with no route yet
        "automatic_https": {"disable_redirects": True},  # :80 is ours (below)
        "routes": [*(_proxy(route) for route in served), _NOT_FOUND],
        "read_header_timeout": "10s",
        "idle_timeout": "5m",
    }
    http = {
        "listen": [_hostport(address, 80) for address in listen],
        "protocols": ["h1"],
        "automatic_https": {"disable": True},
        "routes": _redirects(sorted(route.host for route in routes)),
        "read_header_timeout": "10s",
        "idle_timeout": "1m",
    }
    writer = {"output": "file", "filename": str(log), "roll_size_mb": 1, "roll_keep": 2}
    return {
        "admin": {"listen": f"unix/{admin_socket}", "config": {"persist": False}},
        "logging": {"logs": {"default": {"writer": writer, "level": "INFO"}}},
        "storage": {"module": "file_system", "root": str(storage)},
        "apps": {
            "http": {"grace_period": "5s", "servers": {"https": https, "http": http}},
            **_tls_apps(hosts, issuer),
        },
    }


def _port_taken(text: str) -> PortTaken | None:
    found = _BIND_FAILED.search(text)
    if found is None:
        return None
    address, _, port = found.group(1).rpartition(":")
    return PortTaken(address.strip("[]"), int(port), "")


class Caddy:
    """One detached Caddy whose files (config, admin socket, pid, logs, storage) are all
    under ``directory``; it is found again by its admin socket answering."""

    def __init__(self, directory: Path, *, netns: str | None, binary: str = "caddy") -> None:
        self.directory = directory
        self.netns = netns
        self.binary = binary
        self.config_path = directory / "caddy.json"
        self.admin_socket = directory / "caddy.sock"
        self.pid_path = directory / "caddy.pid"
        self.log_path = directory / "caddy.log"  # Caddy's own log, rolled by Caddy
        self.output_path = directory / "caddy.out"  # what it prints before its log is set up
        self.home = directory / "caddy"
        self._process: subprocess.Popen[bytes] | None = None

    def config(
        self,
        routes: Sequence[ProxyRoute],
        *,
        listen: Sequence[str],
        issuer: TlsIssuer,
        internal_port: int,
    ) -> dict[str, Any]:
        return caddy_config(
            routes,
            listen=listen,
            issuer=issuer,
            internal_port=internal_port,
            admin_socket=self.admin_socket,
            storage=self.home / "data",
            log=self.log_path,
        )

    @property
    def _marker(self) -> str:
        return str(self.config_path)

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def pid(self) -> int | None:
        """The running Caddy's pid, if one runs for this directory."""
        self._reap()
        pid = detached.read_pid(self.pid_path, self._marker)
        if pid is None:
            found = detached.pids_with(self._marker)
            pid = found[0] if found else None
        return pid

    async def _admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        transport = httpx.AsyncHTTPTransport(uds=str(self.admin_socket))
        async with httpx.AsyncClient(transport=transport, timeout=_ADMIN_TIMEOUT) as client:
            # Caddy's admin accepts requests on its unix socket with an empty Host only.
            return await client.request(
                method, f"http://caddy{path}", json=body, headers={"Host": ""}
            )

    async def answering(self) -> bool:
        """Whether a Caddy answers on this directory's admin socket."""
        if not self.admin_socket.exists():
            return False
        try:
            response = await asyncio.wait_for(self._admin("GET", "/config/"), 5)
        except (httpx.HTTPError, OSError, TimeoutError):
            return False
        return response.status_code == 200

    def _write(self, config: dict[str, Any]) -> None:
        self.home.mkdir(mode=0o700, exist_ok=True)
        text = json.dumps(config, indent=1) + "\n"
        write_atomic(self.config_path, text.encode(), mode=0o600)

    async def load(self, config: dict[str, Any]) -> None:
        """Push the whole configuration to the running Caddy."""
        self._write(config)
        detached.bound_log(self.output_path)
        try:
            response = await self._admin("POST", "/load", config)
        except (httpx.HTTPError, OSError) as exc:
            raise GatewayError(f"Caddy does not take its configuration: {exc}") from exc
        if response.status_code != 200:
            try:
                reason = str(response.json().get("error", response.text))
            except ValueError:
                reason = response.text
            raise _port_taken(reason) or GatewayError(f"Caddy refused its configuration: {reason}")

    async def start(self, config: dict[str, Any], ports: Sequence[tuple[str, int]]) -> None:
        """Start Caddy with ``config`` and wait until its admin socket answers."""
        binary = shutil.which(self.binary)
        if binary is None:
            raise GatewayError(f"Caddy is not installed: no {self.binary!r} on PATH")
        # One of ours that does not answer (hung, half-started) would hold the ports.
        await detached.end(detached.pids_with(self._marker), self._marker, timeout=5)
        for address, port, holder in await detached.taken_ports(self.netns, ports):
            raise PortTaken(address, port, holder)
        self._write(config)
        self.admin_socket.unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)
        environment = {
            # Caddy keeps its data under $HOME/XDG: all of it stays in the directory.
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
        }
        argv = [binary, "run", "--config", self._marker, "--pidfile", str(self.pid_path)]
        self._process = detached.spawn(
            argv, log=self.output_path, cwd=self.directory, netns=self.netns, env=environment
        )
        await self._wait_answering(self._process)

    async def _wait_answering(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while not await self.answering():
            if process.poll() is not None:
                tail = detached.log_tail(self.output_path)
                raise _port_taken(tail) or GatewayError(f"Caddy exited while starting: {tail}")
            if time.monotonic() > deadline:
                await detached.end([process.pid], self._marker, timeout=5)
                raise GatewayError(
                    f"Caddy does not answer on {self.admin_socket} after {_START_TIMEOUT:g} s: "
                    f"{detached.log_tail(self.output_path)}"
                )
            await asyncio.sleep(_POLL)

    async def stop(self) -> None:
        """End Caddy (gracefully, then by force) and remove its socket and pid file."""
        pids = set(detached.pids_with(self._marker))
        pid = self.pid()
        await detached.end(pids | ({pid} if pid else set()), self._marker)
        self._reap()
        self.admin_socket.unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)
