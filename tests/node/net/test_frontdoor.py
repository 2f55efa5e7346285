"""The gateway's front door with real Caddy and HAProxy in a scratch namespace: name routes
over HTTPS verified against the devnet CA, :80 redirects, TLS passthrough by SNI beside
them, route changes, proxies killed and brought back, found again by a new object, a
taken port named, and nothing left after stop. (Configuration builders and route checks
are tested without root at the end.)"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import require_root, require_tool
from zgrid.devnet.ca import CertificateAuthority, ensure_ca
from zgrid.node.errors import GatewayError, HostTaken, NodeConfigError, PortTaken
from zgrid.node.net import links
from zgrid.node.net.caddy import caddy_config
from zgrid.node.net.frontdoor import FrontDoor, ProxyRoute, TlsIssuer
from zgrid.node.net.haproxy import haproxy_config
from zgrid.node.net.proxyroute import ROUTES_MAX, RouteFile
from zgrid.node.system import run_command_sync

ADDRESS = "203.0.113.10"
ADDRESS6 = "2001:db8::10"
WEB = "hello.gw.example"
PASS = "pt.gw.example"

# One small server for every backend: plain HTTP on a port or a unix socket, or HTTPS
# with the given certificate; it answers every GET with its name.
_BACKEND = r"""
import http.server, socketserver, ssl, sys
where, cert, key, name = sys.argv[1:5]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Unix(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)
if where.startswith("/"):
    server = Unix(where, Handler)
else:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(where)), Handler)
if cert != "-":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@dataclass
class Gateway:
    netns: str
    ca: CertificateAuthority
    backend_cert: Path  # the passthrough backend's own self-signed certificate
    unix_socket: Path

    def run(
        self, argv: list[str], *, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", f"--net={links.netns_path(self.netns)}", *argv]
        return subprocess.run(
            command,
            input=input.decode() if input else None,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def curl(
        self, url: str, *, cacert: Path, address: str = ADDRESS
    ) -> subprocess.CompletedProcess[str]:
        host = url.split("/")[2]
        port = 443 if url.startswith("https") else 80
        shown = f"[{address}]" if ":" in address else address
        return self.run(
            ["curl", "-sS", "--max-time", "5", "--cacert", str(cacert),
             "--resolve", f"{host}:{port}:{shown}", "-w", "\n%{http_code} %{redirect_url}", url]
        )  # fmt: skip

    def page(self, host: str, *, cacert: Path | None = None, address: str = ADDRESS) -> str:
        """The page served for ``host``; waits a little for Caddy's first certificate."""
        deadline = time.monotonic() + 10
        while True:
            done = self.curl(
                f"https://{host}/", cacert=cacert or self.ca.certificate, address=address
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                return done.stdout.rsplit("\n", 1)[0] if done.returncode == 0 else ""
            time.sleep(0.1)

    def certificate(self, host: str) -> x509.Certificate:
        """The leaf certificate presented on :443 for SNI ``host``."""
        done = self.run(
            ["openssl", "s_client", "-connect", f"{ADDRESS}:443", "-servername", host],
            input=b"",
        )
        found = re.search(
            r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", done.stdout, re.S
        )
        assert found, done.stdout + done.stderr
        return x509.load_pem_x509_certificate(found.group(0).encode())


def _common_name(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "backend.pem", directory / "backend.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _listening(netns: str, port: int) -> bool:
    out = run_command_sync(["ss", "-N", netns, "-H", "-l", "-t", "-n"], check=False)
    return any(line.split()[3].endswith(f":{port}") for line in out.splitlines() if line.split())


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A scratch netns with the public addresses on a veth, the devnet CA, and backends
    (two HTTP ones, one on a unix socket, one HTTPS with its own certificate) inside it."""
    require_root()
    for tool in ("caddy", "haproxy", "ip", "nsenter", "ss", "curl", "openssl"):
        require_tool(tool)
    root = tmp_path_factory.mktemp("gateway")
    netns = "ztf" + secrets.token_hex(6)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        run_command_sync(["ip", "netns", "add", netns])
        for argv in (
            ["link", "set", "lo", "up"],
            ["link", "add", "ztfpub", "type", "veth", "peer", "name", "ztfpeer"],
            ["addr", "add", f"{ADDRESS}/24", "dev", "ztfpub"],
            ["addr", "add", f"{ADDRESS6}/64", "dev", "ztfpub", "nodad"],
            ["link", "set", "ztfpub", "up"],
            ["link", "set", "ztfpeer", "up"],
        ):
            run_command_sync(["ip", "-n", netns, *argv])
        cert, key = _self_signed(root, PASS)
        unix_socket = root / "backend.sock"
        for where, tls, name in (
            ("18081", False, "backend one"),
            ("18082", False, "backend two"),
            (str(unix_socket), False, "backend on a unix socket"),
            ("18443", True, "backend with its own TLS"),
        ):
            certs = [str(cert), str(key)] if tls else ["-", "-"]
            argv = [sys.executable, "-c", _BACKEND, where, *certs, name]
            servers.append(subprocess.Popen(["nsenter", f"--net={links.netns_path(netns)}", *argv]))
        deadline = time.monotonic() + 10
        while not (
            all(_listening(netns, port) for port in (18081, 18082, 18443)) and unix_socket.exists()
        ):
            assert time.monotonic() < deadline, "the test backends did not start"
            time.sleep(0.05)
        yield Gateway(netns, ensure_ca(root / "ca"), cert, unix_socket)
    finally:
        for server in servers:
            server.kill()
            server.wait()
        run_command_sync(["ip", "netns", "delete", netns], check=False)


def _door(gateway: Gateway, directory: Path) -> FrontDoor:
    issuer = TlsIssuer("internal", gateway.ca.certificate, gateway.ca.key)
    return FrontDoor(directory, listen=[ADDRESS, ADDRESS6], tls=issuer, netns=gateway.netns)


def _our_processes(directory: Path) -> list[int]:
    markers = {str(directory / "caddy.json"), str(directory / "haproxy.cfg")}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                words = Path(f"/proc/{entry}/cmdline").read_bytes().decode().split("\0")
            except (OSError, IndexError):
                continue
            if stat != "Z" and markers & set(words):
                found.append(int(entry))
    return found


@pytest.fixture
def door(gateway: Gateway, tmp_path: Path) -> Iterator[FrontDoor]:
    """A front door on the gateway's addresses; stopped afterwards, even after a failure."""
    directory = tmp_path / "door"
    front = _door(gateway, directory)
    try:
        yield front
    finally:
        with contextlib.suppress(GatewayError):
            asyncio.run(front.stop())
        for pid in _our_processes(directory):  # whatever stop() could not end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _web(*backends: str) -> ProxyRoute:
    return ProxyRoute("12-34-web", WEB, backends or ("http://127.0.0.1:18081",))


def _passthrough() -> ProxyRoute:
    return ProxyRoute("12-35-tls", PASS, ("127.0.0.1:18443",), tls_passthrough=True)


def test_a_name_route_answers_over_https_and_port_80_redirects(
    gateway: Gateway, door: FrontDoor
) -> None:
    asyncio.run(door.ensure())
    asyncio.run(door.set_route(_web()))
    assert gateway.page(WEB) == "backend one"
    assert gateway.page(WEB, address=ADDRESS6) == "backend one"
    redirect = gateway.curl(f"http://{WEB}/some/page?x=1", cacert=gateway.ca.certificate)
    assert redirect.stdout.splitlines()[-1] == f"308 https://{WEB}/some/page?x=1"
    unknown = gateway.curl("http://other.gw.example/", cacert=gateway.ca.certificate)
    assert unknown.stdout.splitlines()[-1].startswith("404")


def test_a_passthrough_route_presents_the_backends_certificate_beside_a_name_route(
    gateway: Gateway, door: FrontDoor
) -> None:
    asyncio.run(door.set_route(_web()))  # starts both proxies on its own
    asyncio.run(door.set_route(_passthrough()))
    assert gateway.page(PASS, cacert=gateway.backend_cert) == "backend with its own TLS"
    assert gateway.page(WEB) == "backend one"
    own = gateway.certificate(PASS)
    assert _common_name(own.subject) == _common_name(own.issuer) == PASS
    caddys = gateway.certificate(WEB)
    assert WEB in caddys.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert _common_name(caddys.issuer).startswith("zgrid gateway")
    # Each certificate only verifies against its own root.
    assert gateway.curl(f"https://{PASS}/", cacert=gateway.ca.certificate).returncode != 0


def test_routes_are_replaced_and_removed_and_a_taken_host_is_refused(
    gateway: Gateway, door: FrontDoor
) -> None:
    asyncio.run(door.set_route(_web()))
    assert gateway.page(WEB) == "backend one"
    asyncio.run(door.set_route(_web("http://127.0.0.1:18082")))
    assert gateway.page(WEB) == "backend two"
    asyncio.run(door.set_route(_web(f"unix/{gateway.unix_socket}")))
    assert gateway.page(WEB) == "backend on a unix socket"
    with pytest.raises(HostTaken) as taken:
        asyncio.run(door.set_route(ProxyRoute("99-1-other", WEB, ("http://127.0.0.1:18081",))))
    assert "12-34-web" in str(taken.value) and "99-1-other" in str(taken.value)
    assert [route.id for route in asyncio.run(door.routes())] == ["12-34-web"]
    asyncio.run(door.set_route(_passthrough()))
    asyncio.run(door.remove_route("12-34-web"))
    asyncio.run(door.remove_route("12-34-web"))  # gone already: fine
    assert asyncio.run(door.routes()) == [_passthrough()]
    gone = gateway.curl(f"https://{WEB}/", cacert=gateway.ca.certificate)
    assert gone.returncode != 0 or gone.stdout.splitlines()[-1].startswith("404")
    asyncio.run(door.remove_route("12-35-tls"))
    assert gateway.curl(f"https://{PASS}/", cacert=gateway.backend_cert).returncode != 0


def test_killed_proxies_come_back_with_every_route_and_a_new_object_finds_them(
    gateway: Gateway, door: FrontDoor
) -> None:
    asyncio.run(door.set_route(_web()))
    asyncio.run(door.set_route(_passthrough()))
    caddy, haproxy = door.caddy_pid(), door.haproxy_pid()
    assert caddy and haproxy
    again = _door(gateway, door.directory)  # as a restarted node daemon would
    assert asyncio.run(again.alive())
    asyncio.run(again.ensure())
    assert (again.caddy_pid(), again.haproxy_pid()) == (caddy, haproxy)

    os.kill(caddy, signal.SIGKILL)
    while asyncio.run(again.alive()):
        time.sleep(0.05)
    asyncio.run(again.ensure())
    assert again.caddy_pid() not in (None, caddy) and again.haproxy_pid() == haproxy
    assert gateway.page(WEB) == "backend one"

    os.kill(haproxy, signal.SIGKILL)
    while asyncio.run(again.alive()):
        time.sleep(0.05)
    asyncio.run(again.ensure())
    assert again.haproxy_pid() not in (None, haproxy)
    assert gateway.page(WEB) == "backend one"
    assert gateway.page(PASS, cacert=gateway.backend_cert) == "backend with its own TLS"


def test_route_changes_refuse_no_connection(gateway: Gateway, door: FrontDoor) -> None:
    asyncio.run(door.ensure())
    count = (
        "import socket, time\n"
        "ok = refused = 0\n"
        "end = time.monotonic() + 2.5\n"
        "while time.monotonic() < end:\n"
        "    try:\n"
        f"        socket.create_connection(('{ADDRESS}', 443), timeout=2).close()\n"
        "        ok += 1\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "print(ok, refused)\n"
    )
    counter = subprocess.Popen(
        ["nsenter", f"--net={links.netns_path(gateway.netns)}", sys.executable, "-c", count],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for number in range(5):  # each one a reload of HAProxy
            route = ProxyRoute(f"pt{number}", f"pt{number}.gw.example", ("127.0.0.1:9",), True)
            asyncio.run(door.set_route(route))
        ok, refused = map(int, counter.communicate(timeout=20)[0].split())
    finally:
        counter.kill()
        counter.wait()
    assert ok > 0 and refused == 0


def test_a_taken_port_is_named(gateway: Gateway, door: FrontDoor) -> None:
    for port in (443, 80):
        script = (
            "import socket, time; s = socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('{ADDRESS}', {port})); s.listen(); print('up', flush=True); time.sleep(60)"
        )
        squatter = subprocess.Popen(
            ["nsenter", f"--net={links.netns_path(gateway.netns)}", sys.executable, "-c", script],
            stdout=subprocess.PIPE,
        )
        try:
            assert squatter.stdout is not None and squatter.stdout.readline() == b"up\n"
            with pytest.raises(PortTaken) as taken:
                asyncio.run(door.ensure())
            assert (taken.value.address, taken.value.port) == (ADDRESS, port)
            assert f"{ADDRESS}:{port}" in str(taken.value)
        finally:
            squatter.kill()
            squatter.wait()
        asyncio.run(door.stop())


def test_stop_leaves_no_process_and_keeps_the_routes(gateway: Gateway, door: FrontDoor) -> None:
    asyncio.run(door.set_route(_web()))
    assert _our_processes(door.directory)
    asyncio.run(door.stop())
    assert _our_processes(door.directory) == []
    assert not asyncio.run(door.alive())
    for name in ("caddy.sock", "caddy.pid", "haproxy.sock", "haproxy.pid"):
        assert not (door.directory / name).exists(), name
    assert asyncio.run(door.routes()) == [_web()]
    asyncio.run(door.ensure())  # the routes file brings everything back
    assert gateway.page(WEB) == "backend one"


# --- without root: the configurations and the checks -------------------------------------


def test_routes_are_checked() -> None:
    bad = [
        ("bad id!", WEB, ("http://127.0.0.1:1",), False),
        ("a", "Upper.example", ("http://127.0.0.1:1",), False),
        ("a", "trailing.dot.", ("http://127.0.0.1:1",), False),
        ("a", "x" * 250 + ".example", ("http://127.0.0.1:1",), False),
        ("a", "bad\nline.example", ("http://127.0.0.1:1",), False),
        ("a", WEB, (), False),
        ("a", WEB, ("http://127.0.0.1:1",) * 33, False),
        ("a", WEB, ("127.0.0.1:1",), False),  # not a URL
        ("a", WEB, ("http://127.0.0.1:1/path",), False),
        ("a", WEB, ("http://127.0.0.1:1", "https://127.0.0.1:2"), False),
        ("a", WEB, ("http://127.0.0.1:1",), True),  # passthrough takes host:port
        ("a", WEB, ("2001:db8::1:443",), True),  # IPv6 goes in brackets
        ("a", WEB, ("127.0.0.1:0",), True),
        ("a", WEB, ("unix/relative.sock",), True),
        ("a", WEB, ("unix//with space.sock",), False),
    ]
    for route_id, host, backends, passthrough in bad:
        with pytest.raises(GatewayError):
            ProxyRoute(route_id, host, backends, passthrough)
    ProxyRoute("12-34-web.x_1", "my_app.gw.example", ("https://[2001:db8::1]:8443",))
    ProxyRoute("a", WEB, ("[2001:db8::1]:443", "unix//run/x.sock", "name.example:443"), True)
    with pytest.raises(NodeConfigError):
        TlsIssuer("internal")
    with pytest.raises(NodeConfigError):
        FrontDoor(Path("/tmp"), listen=["not-an-ip"], tls=TlsIssuer("acme"))


def test_the_number_of_routes_is_bounded(tmp_path: Path) -> None:
    RouteFile(tmp_path / "routes.json").save(
        [
            ProxyRoute(f"r{n}", f"h{n}.gw.example", ("http://127.0.0.1:1",))
            for n in range(ROUTES_MAX)
        ]
    )
    door = FrontDoor(tmp_path, listen=[ADDRESS], tls=TlsIssuer("acme"))
    with pytest.raises(GatewayError, match=str(ROUTES_MAX)):
        asyncio.run(door.set_route(ProxyRoute("one-more", "more.gw.example", ("http://[::1]:1",))))
    assert len(asyncio.run(door.routes())) == ROUTES_MAX


def test_an_acme_issuer_is_configured_for_exactly_the_terminated_hosts(tmp_path: Path) -> None:
    issuer = TlsIssuer(
        "acme",
        acme_email="ops@example.com",
        acme_directory="https://acme-staging-v02.api.letsencrypt.org/directory",
    )
    config = caddy_config(
        [_web("https://10.0.0.1:8443"), _passthrough()],
        listen=[ADDRESS, ADDRESS6],
        issuer=issuer,
        internal_port=8443,
        admin_socket=tmp_path / "caddy.sock",
        storage=tmp_path / "data",
        log=tmp_path / "caddy.log",
    )
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert policy["subjects"] == [WEB]  # the passthrough host's certificate is its backend's
    assert policy["issuers"] == [
        {"module": "acme", "ca": issuer.acme_directory, "email": "ops@example.com"}
    ]
    assert "pki" not in config["apps"]
    assert config["admin"]["listen"] == f"unix/{tmp_path / 'caddy.sock'}"
    servers = config["apps"]["http"]["servers"]
    assert servers["https"]["listen"] == ["127.0.0.1:8443"]
    assert servers["http"]["listen"] == [f"{ADDRESS}:80", f"[{ADDRESS6}]:80"]
    (proxy,) = servers["https"]["routes"][0]["handle"]
    assert proxy["upstreams"] == [{"dial": "10.0.0.1:8443"}]
    assert proxy["transport"]["tls"] == {"insecure_skip_verify": True}
    assert json.loads(json.dumps(config)) == config


def test_the_haproxy_configuration_routes_passthrough_by_sni() -> None:
    routes = [
        _web(),
        ProxyRoute("pt-1", PASS, ("[2001:db8::1]:443", "unix//run/b.sock", "10.0.0.2:443"), True),
    ]
    text = haproxy_config(routes, listen=[ADDRESS, ADDRESS6], caddy_port=8443, maxconn=1000)
    assert f"bind {ADDRESS}:443" in text and f"bind [{ADDRESS6}]:443" in text
    assert f"use_backend route_pt-1 if {{ req.ssl_sni -i {PASS} }}" in text
    assert WEB not in text  # name routes reach Caddy, the default backend
    for server in ("[2001:db8::1]:443", "unix@/run/b.sock", "10.0.0.2:443"):
        assert server in text
    if shutil.which("haproxy"):
        checked = subprocess.run(
            ["haproxy", "-c", "-q", "-f", "/dev/stdin"],
            input=text,
            text=True,
            capture_output=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr


def test_a_route_on_a_private_network_reaches_its_backend_inside_that_namespace_only(
    gateway: Gateway, door: FrontDoor
) -> None:
    """A backend in another namespace (a private network's router): HAProxy connects from
    inside it, Caddy reaches it through HAProxy's socket, and the same address in the
    gateway's own namespace is never what answers."""
    router = "ztg" + secrets.token_hex(6)
    server = None
    try:
        run_command_sync(["ip", "netns", "add", router])
        run_command_sync(["ip", "-n", router, "link", "set", "lo", "up"])
        argv = [sys.executable, "-c", _BACKEND, "18081", "-", "-", "backend in the network"]
        server = subprocess.Popen(["nsenter", f"--net={links.netns_path(router)}", *argv])
        deadline = time.monotonic() + 10
        while not _listening(router, 18081):
            assert time.monotonic() < deadline, "the network's backend did not start"
            time.sleep(0.05)
        asyncio.run(door.ensure())
        inside = ProxyRoute(
            "12-36-net", "net.gw.example", ("http://127.0.0.1:18081",), netns=router
        )
        asyncio.run(door.set_route(inside))
        asyncio.run(door.set_route(_web()))  # the same address and port, in the gateway's netns
        assert gateway.page("net.gw.example") == "backend in the network"
        assert gateway.page(WEB) == "backend one"
        passing = ProxyRoute("12-37-net", "np.gw.example", ("127.0.0.1:18081",), True, router)
        asyncio.run(door.set_route(passing))
        done = gateway.run(["openssl", "s_client", "-connect", f"{ADDRESS}:443", "-servername",
                            "np.gw.example"], input=b"")  # fmt: skip
        assert "BEGIN CERTIFICATE" not in done.stdout  # plain HTTP there: no TLS handshake
        kept = {r.id: r.netns for r in asyncio.run(door.routes())}
        assert kept["12-36-net"] == kept["12-37-net"] == router  # routes.json keeps it
        with pytest.raises(GatewayError, match="private network"):
            ProxyRoute("12-38-net", "x.gw.example", ("https://10.1.1.2:443",), netns=router)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        run_command_sync(["ip", "netns", "delete", router], check=False)
