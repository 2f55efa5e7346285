"""What the gateway's front door serves: routes (host → backends), the TLS issuer, and the
routes file that is the truth both proxies are configured from.

Everything here is checked strictly because it ends up in generated proxy configuration
(HAProxy's is text): a host, id or backend that passes these checks cannot change the
meaning of a configuration line.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from zgrid.atomic import write_atomic
from zgrid.node.errors import GatewayError, NodeConfigError

__all__ = [
    "BACKENDS_MAX",
    "HOST_MAX",
    "ROUTES_MAX",
    "Backend",
    "ProxyRoute",
    "RouteFile",
    "TlsIssuer",
    "parse_backend",
]

ROUTES_MAX = 4096
BACKENDS_MAX = 32
HOST_MAX = 253
_ID_MAX = 128
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
_UNIX_PREFIX = "unix/"  # "unix//abs/path.sock": the prefix and an absolute path
_FORMAT = 1

_ID = re.compile(r"[A-Za-z0-9_.-]+")
# Gateway names may hold '_' (zgrid.types), so labels do too; browsers and Caddy accept it.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_UNIX_PATH = re.compile(r"/[A-Za-z0-9_.@+/-]+")
_NETNS = re.compile(r"[a-z0-9]{1,15}")  # the node's own names (zgrid.node.naming)


@dataclass(frozen=True, slots=True)
class Backend:
    """One parsed backend: a TCP ``host``:``port`` or a unix socket ``path``."""

    host: str = ""  # a DNS name or an IP address (IPv6 without brackets)
    port: int = 0
    path: str = ""  # set for a unix socket; host and port are empty then
    tls: bool = False  # an https:// backend: Caddy speaks TLS to it

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _check_host(host: str, what: str) -> None:
    labels = host.split(".")
    if (
        not host
        or len(host) > HOST_MAX
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise GatewayError(
            f"{what} {host!r} is not a lower-case DNS name of at most {HOST_MAX} characters "
            "(like app.example.com, without a trailing dot)"
        )


def _backend_host(host: str, backend: str) -> str:
    if "%" in host:
        raise GatewayError(
            f"backend {backend!r}: scoped (link-local %zone) addresses are not served"
        )
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        _check_host(host, f"the host of backend {backend!r}")
        return host


def _unix_backend(backend: str) -> Backend:
    path = backend[len(_UNIX_PREFIX) :]
    if not _UNIX_PATH.fullmatch(path) or len(path) > _UNIX_PATH_MAX or "/../" in f"{path}/":
        raise GatewayError(
            f"backend {backend!r} must be unix//ABSOLUTE/PATH (letters, digits, _.@+/-; at "
            f"most {_UNIX_PATH_MAX} characters)"
        )
    return Backend(path=path)


def _passthrough_backend(backend: str) -> Backend:
    host, sep, port = backend.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise GatewayError(f"backend {backend!r}: only IPv6 addresses go in brackets")
    elif ":" in host:
        raise GatewayError(f"backend {backend!r}: an IPv6 address goes in brackets, [v6]:port")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise GatewayError(f"backend {backend!r} must be host:port or [v6]:port")
    return Backend(host=_backend_host(host, backend), port=int(port))


def _url_backend(backend: str) -> Backend:
    try:
        parts = urlsplit(backend)
        port = parts.port
    except ValueError as exc:
        raise GatewayError(f"backend {backend!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GatewayError(f"backend {backend!r} must be an http:// or https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise GatewayError(f"backend {backend!r} must not carry credentials, a query or fragment")
    if parts.path not in ("", "/"):
        # Caddy's reverse_proxy keeps the request's path: a prefix would be dropped silently.
        raise GatewayError(f"backend {backend!r} must not have a path")
    tls = parts.scheme == "https"
    default = 443 if tls else 80
    return Backend(host=_backend_host(parts.hostname, backend), port=port or default, tls=tls)


def parse_backend(backend: str, *, passthrough: bool) -> Backend:
    """``backend`` as a route gives it, checked; raises GatewayError naming what is wrong."""
    if backend.startswith(_UNIX_PREFIX):
        return _unix_backend(backend)
    return _passthrough_backend(backend) if passthrough else _url_backend(backend)


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """One host the gateway serves and the backends it forwards to.

    Without ``tls_passthrough`` Caddy terminates TLS and proxies HTTP to ``http://h:p``,
    ``https://h:p`` or ``unix//abs/path.sock`` backends; with it HAProxy forwards the raw
    TLS stream, chosen by SNI, to ``h:p``, ``[v6]:p`` or ``unix//abs/path.sock``.

    With ``netns`` (a private network's router namespace) the backends are addresses in that
    namespace: HAProxy connects to them from inside it, and Caddy reaches them through a
    unix socket HAProxy listens on, so a route reaches nothing of the node's own network.
    """

    id: str  # unique key, e.g. the workload id "12-34-web"
    host: str  # lower-case hostname matched by the Host header / SNI
    backends: tuple[str, ...]
    tls_passthrough: bool = False
    netns: str = ""

    def __post_init__(self) -> None:
        if self.netns and not _NETNS.fullmatch(self.netns):
            raise GatewayError(f"route {self.id}: netns {self.netns!r} is not a namespace name")
        if not _ID.fullmatch(self.id) or len(self.id) > _ID_MAX:
            raise GatewayError(
                f"route id {self.id!r} must be 1-{_ID_MAX} characters of A-Z, a-z, 0-9, '_.-'"
            )
        _check_host(self.host, f"route {self.id}: host")
        if not isinstance(self.backends, tuple) or not 0 < len(self.backends) <= BACKENDS_MAX:
            raise GatewayError(
                f"route {self.id} must have 1-{BACKENDS_MAX} backends (a tuple), "
                f"got {self.backends!r}"
            )
        parsed = self.parsed_backends()
        if self.netns and any(b.path or b.tls for b in parsed):
            raise GatewayError(
                f"route {self.id}: backends on a private network are http:// URLs or host:port"
            )
        if len({backend.tls for backend in parsed}) > 1:
            raise GatewayError(
                f"route {self.id} mixes https:// with plain HTTP backends; Caddy speaks one "
                "protocol to all backends of a route"
            )

    def parsed_backends(self) -> tuple[Backend, ...]:
        try:
            return tuple(
                parse_backend(backend, passthrough=self.tls_passthrough)
                for backend in self.backends
            )
        except GatewayError as exc:
            raise GatewayError(f"route {self.id}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "backends": list(self.backends),
            "tls_passthrough": self.tls_passthrough,
            "netns": self.netns,
        }

    @classmethod
    def from_json(cls, data: Any) -> ProxyRoute:
        if not isinstance(data, dict):
            raise GatewayError(f"a route must be a JSON object, got {data!r}")
        backends = data.get("backends")
        if not isinstance(backends, list) or not all(isinstance(b, str) for b in backends):
            raise GatewayError(f"route {data.get('id')!r}: backends must be a list of strings")
        route_id, host = data.get("id"), data.get("host")
        passthrough = data.get("tls_passthrough", False)
        if not isinstance(route_id, str) or not isinstance(host, str):
            raise GatewayError(f"a route's id and host must be strings, got {data!r}")
        if not isinstance(passthrough, bool):
            raise GatewayError(f"route {route_id}: tls_passthrough must be true or false")
        netns = data.get("netns", "")
        if not isinstance(netns, str):
            raise GatewayError(f"route {route_id}: netns must be a string")
        return cls(route_id, host, tuple(backends), passthrough, netns)


@dataclass(frozen=True, slots=True)
class TlsIssuer:
    """Where Caddy's certificates come from.

    ``internal``: signed by Caddy's pki app with the given root (the devnet's CA, whose
    clients trust that root). ``acme``: obtained from an ACME CA (Let's Encrypt's by
    default), which must reach this node's :80 or :443 on the routed names.
    """

    kind: Literal["internal", "acme"]
    ca_certificate: Path | None = None  # internal: the root CA certificate (PEM)
    ca_key: Path | None = None  # internal: its private key (PEM)
    acme_email: str = ""
    acme_directory: str = ""  # empty: Caddy's default (Let's Encrypt production)

    def __post_init__(self) -> None:
        if self.kind == "internal":
            for what, path in (("ca_certificate", self.ca_certificate), ("ca_key", self.ca_key)):
                if path is None or not Path(path).is_absolute():
                    raise NodeConfigError(
                        f"an internal TLS issuer needs {what} as an absolute path, got {path!r}"
                    )
        elif self.kind == "acme":
            if self.acme_directory and urlsplit(self.acme_directory).scheme != "https":
                raise NodeConfigError(
                    f"the ACME directory must be an https:// URL, got {self.acme_directory!r}"
                )
            if any(c.isspace() for c in self.acme_email) or (
                self.acme_email and "@" not in self.acme_email
            ):
                raise NodeConfigError(f"the ACME e-mail {self.acme_email!r} is not an address")
        else:
            raise NodeConfigError(f"a TLS issuer is 'internal' or 'acme', got {self.kind!r}")


class RouteFile:
    """``routes.json``: every route the front door serves, rewritten atomically on change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[ProxyRoute]:
        """The routes, sorted by id; none when the file does not exist yet."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise GatewayError(f"the routes file {self.path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
            raise GatewayError(f"the routes file {self.path} holds no list of routes")
        try:
            routes = [ProxyRoute.from_json(entry) for entry in data["routes"]]
        except GatewayError as exc:
            raise GatewayError(f"the routes file {self.path}: {exc}") from exc
        return sorted(routes, key=lambda route: route.id)

    def save(self, routes: list[ProxyRoute]) -> None:
        ordered = sorted(routes, key=lambda route: route.id)
        data = {"format": _FORMAT, "routes": [route.to_json() for route in ordered]}
        try:
            write_atomic(self.path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)
        except OSError as exc:
            raise GatewayError(f"cannot write the routes file {self.path}: {exc}") from exc
