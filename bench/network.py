"""Network benchmark: TCP over a private network vs the bare bridge, a gateway vs Caddy.

TCP throughput over a deployment's private network against the bare devnet bridge, and
HTTP requests/s through a gateway against Caddy serving the same page directly.

It starts a devnet with 2 nodes in a temporary directory (`zgrid devnet up`'s own code:
ledger, hub, explorer, each node in a network namespace on the devnet's bridge) and
deploys, through the SDK, one busybox container on each node joined by a private network
(WireGuard between the nodes, run by wireguard-go). Then:

* TCP: this machine's iperf3 runs inside each container's network namespace, the server
  in machine A, the client in machine B sending to A's private address; the peer is the
  same iperf3 between node-1's and node-2's own namespaces over their bridge addresses
  (no overlay). The ratio overlay / bare is what the private network costs. The TCP MSS
  each path negotiated shows the overlay's smaller MTU.
* HTTP: Caddy, started by hand in node-1's namespace, serves a 1 KiB page over HTTP and
  over HTTPS (its own local CA); wrk loads it with keep-alive from a client namespace of
  its own on the bridge. With ``--gateway-url`` the same wrk load goes to a deployed
  gateway, and the ratio gateway / Caddy is printed.

Everything stays on this machine: loopback, the devnet's bridge and namespaces. The devnet
is taken down at the end, also on an error or Ctrl-C, unless ``--keep``.

Run as root from the project root: ``.venv/bin/python bench/network.py [--time 10] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.client import NetworkConfig, Store, SyncGrid, Unlocker, parse_spec
from zgrid.devnet import Devnet, DevnetStatus
from zgrid.devnet.layout import Layout
from zgrid.devnet.network import plug_host
from zgrid.errors import ZgridError
from zgrid.identity import new_mnemonic
from zgrid.node import links, unique_name
from zgrid.types import workload_id

ZGRID = Path(sys.executable).with_name("zgrid")
NETWORK = "devnet"  # the name `zgrid devnet up` gives the devnet in a client's store
SPEC = """\
name: bench-network
network:
  name: net
  ip_range: 10.61.0.0/16
machines:
  - name: iperf
    flist: busybox
    cpu: 1
    memory: 256MiB
    replicas: 2
    planetary: false
    # The gateway's backend too: busybox httpd (in the background) serves a 1 KiB page.
    entrypoint: >-
      /bin/sh -c 'mkdir -p /www && head -c 1023 /dev/zero | tr "\\0" z > /www/index.html &&
      httpd -p 8080 -h /www && exec sleep 1000000'
gateways:
  - name: bench
    machine: iperf
    port: 8080
placement:
  spread: true
"""
GATEWAY_NAME = "bench"
IPERF_PORT = 5201
CADDY_HTTP_PORT, CADDY_HTTPS_PORT = 8080, 8443
CADDY_NAME = "peer.bench.test"  # served over HTTPS with a certificate of Caddy's local CA
PAGE_BYTES = 1024
CLIENT_HOST = 250  # the wrk client's namespace is .250 of the devnet's /24
WRK_THREADS = 2
TIME_RANGE = (1, 120)
CONNECTIONS_RANGE = (1, 1024)


class BenchError(Exception):
    """A step of the benchmark failed; the message says which."""


@dataclass(frozen=True)
class Netns:
    """A network namespace to run this machine's tools in, by its path."""

    label: str
    path: Path

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={self.path}", *argv]


@dataclass
class TcpRun:
    sender_gbps: float
    receiver_gbps: float
    retransmits: int
    mss: int


@dataclass
class HttpRun:
    requests_per_s: float
    transfer_mib_per_s: float
    latency_avg_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    requests: int
    errors: int  # socket errors and answers other than 2xx/3xx


# -- processes -------------------------------------------------------------------------------


def _run(argv: Sequence[str], what: str, *, timeout: float = 60) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: no end within {timeout:.0f} s") from None
    except OSError as exc:
        raise BenchError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip())[-600:]
        raise BenchError(f"{what} exited {done.returncode}: {tail}")
    return done.stdout


@contextlib.contextmanager
def _background(argv: Sequence[str], log: Path, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running for the time of the block (in a session of its own, so Ctrl-C
    reaches only us and we stop it), killed and reaped at the end."""
    with log.open("ab") as out:
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise BenchError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _until(check: Callable[[], bool], what: str, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


# -- the devnet and the deployment -------------------------------------------------------------


class Bench:
    """The devnet in ``work/devnet``, a deployer's store in ``work/home``, and the client
    namespace; :meth:`close` takes all of it away."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.devnet_dir = work / "devnet"
        self.home = work / "home"
        self.unlocker = Unlocker(key_file=work / "store.key")
        self.client_netns = ""
        self.client_veth = ""

    def up(self, progress: Callable[[str], None]) -> DevnetStatus:
        status = asyncio.run(Devnet(self.devnet_dir, progress=progress).up(nodes=2))
        missing = [node.name for node in status.nodes if node.node_id is None]
        if missing:
            raise BenchError(f"devnet up: {', '.join(missing)} did not join the ledger")
        return status

    def deployer(self, status: DevnetStatus) -> SyncGrid:
        """A funded identity on the devnet, as `zgrid identity new` and `account faucet` make."""
        store = Store(self.home, unlocker=self.unlocker)
        store.add_network(
            NetworkConfig(
                name=NETWORK, ledger=status.ledger_url, hub=status.hub_url,
                explorer=status.explorer_url, identity="default",
            ),
            overwrite=True,
        )  # fmt: skip
        store.use_network(NETWORK)
        identity = store.add_identity(new_mnemonic(), name="default", overwrite=True)
        with SyncChainClient(status.ledger_url, identity=identity) as chain:
            chain.faucet(1000 * UNITS_PER_TOKEN)
        return SyncGrid.open(self.home, network=NETWORK, unlocker=self.unlocker)

    def plug_client(self) -> Netns:
        """A namespace of its own on the devnet's bridge, for wrk (neither node's)."""
        state = Layout(self.devnet_dir).load()
        self.client_netns = unique_name("zgbn", state.bridge, "client")
        self.client_veth = unique_name("zgbv", state.bridge, "client")
        asyncio.run(
            plug_host(
                self.client_netns, self.client_veth, bridge=state.bridge,
                address=f"{state.prefix}.{CLIENT_HOST}/24", gateway=state.gateway,
            )
        )  # fmt: skip
        return Netns("client", links.netns_path(self.client_netns))

    def close(self, *, keep: bool) -> list[str]:
        """Remove the client namespace and (unless ``keep``) the devnet; the problems met."""
        problems = []
        if self.client_netns:
            try:
                asyncio.run(_unplug(self.client_netns, self.client_veth))
            except Exception as exc:  # the devnet still goes down
                problems.append(f"removing the client namespace {self.client_netns}: {exc}")
        if keep or not Layout(self.devnet_dir).exists():
            return problems
        argv = [str(ZGRID), "devnet", "down", "--dir", str(self.devnet_dir), "--purge"]
        # Its own session: a second Ctrl-C must not stop the cleanup half-way.
        down = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        while True:
            try:
                _, stderr = down.communicate()
                break
            except KeyboardInterrupt:
                continue
        if down.returncode != 0:
            problems.append(f"zgrid devnet down exited {down.returncode}: {stderr.decode()[-400:]}")
        return problems


async def _unplug(netns: str, veth: str) -> None:
    await links.delete_link(veth)
    await links.delete_netns(netns)


@dataclass(frozen=True)
class Machine:
    name: str
    private_ip: str
    netns: Netns


def _machines(grid: SyncGrid, status: DevnetStatus) -> list[Machine]:
    """The two containers: private address and network namespace (/proc/<pid>/ns/net of
    the container's first process, as runc reports it)."""
    view = grid.show("bench-network")
    if not view.ok:
        states = ", ".join(f"{w.name}: {w.state} {w.message}" for w in view.workloads)
        raise BenchError(f"deploy: not every workload is ok ({states})")
    twin_id = grid.twin_id()
    data = {node.node_id: Path(node.data) for node in status.nodes}
    machines = []
    for workload in sorted(view.workloads, key=lambda w: w.name):
        if workload.type != "zmachine":
            continue
        machine_id = workload_id(twin_id, workload.contract_id, workload.name)
        runc = ["runc", "--root", str(data[workload.node_id] / "runtime" / "runc")]
        state = json.loads(_run([*runc, "state", machine_id], f"runc state {machine_id}"))
        netns = Netns(workload.name, Path(f"/proc/{int(state['pid'])}/ns/net"))
        machines.append(Machine(workload.name, str(workload.data["ip"]), netns))
    if len(machines) != 2:
        raise BenchError(f"deploy: {len(machines)} machines instead of 2")
    return machines


# -- TCP: iperf3 -------------------------------------------------------------------------------


def tcp_throughput(
    server: Netns, client: Netns, address: str, *, seconds: int, log: Path
) -> TcpRun:
    """iperf3 from ``client`` to a one-off server in ``server`` listening on ``address``."""
    serve = server.command(["iperf3", "--server", "--one-off", "--bind", address])
    serve += ["--port", str(IPERF_PORT)]
    with _background(serve, log, f"iperf3 server in {server.label}") as process:
        _until(
            lambda: _listens(server, IPERF_PORT) or process.poll() is not None,
            f"iperf3 server in {server.label} listening",
        )
        if process.poll() is not None:
            raise BenchError(f"iperf3 server in {server.label} exited {process.returncode}")
        argv = client.command(
            ["iperf3", "--client", address, "--port", str(IPERF_PORT), "--time", str(seconds),
             "--json"]
        )  # fmt: skip
        what = f"iperf3 from {client.label} to {address}"
        try:
            report = json.loads(_run(argv, what, timeout=seconds + 30))
        except ValueError as exc:
            raise BenchError(f"{what}: its output is not JSON") from exc
    if "error" in report:
        raise BenchError(f"{what}: {report['error']}")
    end = report["end"]
    return TcpRun(
        sender_gbps=round(end["sum_sent"]["bits_per_second"] / 1e9, 3),
        receiver_gbps=round(end["sum_received"]["bits_per_second"] / 1e9, 3),
        retransmits=int(end["sum_sent"].get("retransmits", 0)),
        mss=int(report["start"].get("tcp_mss_default", 0)),
    )


def _listens(netns: Netns, port: int) -> bool:
    done = subprocess.run(
        netns.command(["ss", "-Htln", f"sport = :{port}"]),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return bool(done.stdout.strip())


# -- HTTP: Caddy and wrk -----------------------------------------------------------------------


def _caddyfile(work: Path) -> Path:
    site = work / "www"
    site.mkdir(parents=True, exist_ok=True)
    body = b"<!doctype html><title>bench</title><pre>\n"
    (site / "index.html").write_bytes(body + b"z" * (PAGE_BYTES - len(body) - 1) + b"\n")
    config = work / "Caddyfile"
    config.write_text(
        "{\n"
        "\tadmin off\n"  # nothing else configures it: no admin API at all
        f"\tstorage file_system {work / 'data'}\n"
        "\tskip_install_trust\n"  # its local CA stays in the temp dir, not this machine's
        "\tauto_https disable_redirects\n"
        "\tlocal_certs\n"
        "}\n"
        f"http://:{CADDY_HTTP_PORT} {{\n\troot * {site}\n\tfile_server\n}}\n"
        f"https://{CADDY_NAME}:{CADDY_HTTPS_PORT} {{\n\troot * {site}\n\tfile_server\n}}\n"
    )
    return config


@contextlib.contextmanager
def caddy(server: Netns, work: Path) -> Iterator[Path]:
    """Caddy serving the page in ``server`` on both ports; yields its local CA's root."""
    work.mkdir(parents=True, exist_ok=True)
    config = _caddyfile(work)
    argv = server.command(
        ["env", f"HOME={work}", f"XDG_CONFIG_HOME={work / 'config'}",
         f"XDG_DATA_HOME={work / 'data'}", "caddy", "run", "--config", str(config),
         "--adapter", "caddyfile"]
    )  # fmt: skip
    with _background(argv, work / "caddy.log", "caddy") as process:
        root = work / "data" / "pki" / "authorities" / "local" / "root.crt"

        def ready() -> bool:
            up = _listens(server, CADDY_HTTP_PORT) and _listens(server, CADDY_HTTPS_PORT)
            return process.poll() is not None or (up and root.exists())

        _until(ready, "caddy serving the page")
        if process.poll() is not None:
            tail = (work / "caddy.log").read_text(errors="replace")[-600:]
            raise BenchError(f"caddy exited {process.returncode}: {tail}")
        yield root


def gateway_requests(
    url: str,
    *,
    client: Netns,
    resolve: tuple[str, str] | None = None,
    ca: Path | None = None,
    connections: int = 32,
    seconds: int = 10,
    work: Path,
) -> HttpRun:
    """wrk's keep-alive load on ``url`` from ``client``: requests/s and latencies.

    ``resolve`` is (host, address) as curl's ``--resolve``: the URL's host name is
    answered with that address inside the client, so the Host header and TLS SNI carry
    the name. One request with curl checks first that the URL answers 2xx, its
    certificate checked against ``ca`` (PEM) for HTTPS. wrk itself verifies no
    certificate: it measures throughput, the curl check stands for the TLS setup.
    """
    work.mkdir(parents=True, exist_ok=True)
    prefix = client.command([])
    if resolve is not None:
        # A private mount namespace in which /etc/hosts names the address: wrk has no
        # --resolve, and getaddrinfo reads that file.
        hosts = work / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{resolve[1]} {resolve[0]}\n")
        prefix += ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]  # fmt: skip
    probe = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"]
    probe += ["--cacert", str(ca)] if ca is not None else []
    _probe([*prefix, *probe, url], f"curl {url} from {client.label}")
    load = ["wrk", "--threads", str(min(WRK_THREADS, connections))]
    load += ["--connections", str(connections), "--duration", f"{seconds}s", "--latency", url]
    output = _run([*prefix, *load], f"wrk on {url}", timeout=seconds + 60)
    return parse_wrk(output, what=f"wrk on {url}")


def _probe(argv: list[str], what: str, *, timeout: float = 30) -> None:
    """Until ``argv`` (curl printing the status code) answers 2xx: a server just started
    may still be getting its certificate."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            code = _run(argv, what, timeout=15).strip()
            if code.startswith("2"):
                return
            problem = f"{what}: HTTP {code}"
        except BenchError as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            raise BenchError(problem)
        time.sleep(0.5)


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_UNIT_MIB = {"B": 1 / (1 << 20), "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0, "TB": 1 << 20}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return round(float(found[1]) * _UNIT_MS[found[2]], 3)


def parse_wrk(output: str, *, what: str = "wrk") -> HttpRun:
    """The figures of wrk's report (run with ``--latency``)."""
    try:
        latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
        p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
        p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
        rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
        transfer = re.search(r"^Transfer/sec:\s+([\d.]+)(\w+)", output, re.M)
        total = re.search(r"^\s+(\d+) requests in", output, re.M)
        if not (latency and p50 and p99 and rate and transfer and total):
            raise ValueError("no Latency, 50%, 99%, Requests/sec or Transfer/sec line")
        socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)  # fmt: skip
        refused = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors = sum(int(n) for n in socket.groups()) if socket else 0
        return HttpRun(
            requests_per_s=float(rate[1]),
            transfer_mib_per_s=round(float(transfer[1]) * _UNIT_MIB[transfer[2]], 3),
            latency_avg_ms=_ms(latency[1]),
            latency_p50_ms=_ms(p50[1]),
            latency_p99_ms=_ms(p99[1]),
            latency_max_ms=_ms(latency[3]),
            requests=int(total[1]),
            errors=errors + (int(refused[1]) if refused else 0),
        )
    except (ValueError, KeyError) as exc:
        raise BenchError(f"{what}: cannot read its report ({exc}):\n{output[-600:]}") from exc


# -- the run -----------------------------------------------------------------------------------


def _resolve_option(text: str) -> tuple[str, str]:
    host, _, address = text.rpartition(":")
    if not host or not address:
        raise argparse.ArgumentTypeError("give HOST:ADDRESS, e.g. web.gw.test:10.100.1.3")
    return host, address


def _ranged(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}–{high}")
        return value

    return parse


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--time", type=_ranged(*TIME_RANGE), default=10, metavar="SECONDS",
        help=f"seconds of each iperf3 and wrk run ({TIME_RANGE[0]}–{TIME_RANGE[1]}, default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=_ranged(*CONNECTIONS_RANGE), default=32, metavar="N",
        help="wrk's open keep-alive connections (default 32)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="leave the devnet and its deployment up for inspection (its directory is printed)",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-url", metavar="URL",
        help="also load this deployed gateway's URL with wrk and compare it to Caddy",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-resolve", type=_resolve_option, metavar="HOST:ADDRESS",
        help="answer the gateway URL's host name with ADDRESS (as curl --resolve)",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-ca", type=Path, metavar="PEM",
        help="the CA the gateway's HTTPS certificate is checked against",
    )  # fmt: skip
    args = parser.parse_args()
    if (args.gateway_resolve or args.gateway_ca) and not args.gateway_url:
        parser.error("--gateway-resolve and --gateway-ca go with --gateway-url")
    if args.gateway_ca is not None and not args.gateway_ca.is_file():
        parser.error(f"--gateway-ca: no file {args.gateway_ca}")
    return args


def _measure(args: argparse.Namespace, bench: Bench, progress: Progress) -> dict[str, Any]:
    task = progress.add_task("devnet up", total=None)
    status = bench.up(lambda line: progress.update(task, description=f"devnet: {line}"))
    progress.update(task, description="deploying a container on each node (private network)")
    grid = bench.deployer(status)
    try:
        grid.deploy(
            parse_spec(SPEC, source="bench-network"),
            on_step=lambda line: progress.update(task, description=f"deploy: {line}"),
        )
        machines = _machines(grid, status)
    finally:
        grid.close()
    a, b = machines
    nodes = [Netns(node.name, links.netns_path(node.netns)) for node in status.nodes]
    logs = bench.work / "logs"
    logs.mkdir(exist_ok=True)
    seconds = args.time

    def step(text: str) -> None:
        progress.update(task, description=text)

    step(f"iperf3 over the private network, {a.name} ← {b.name} ({seconds} s)")
    overlay = tcp_throughput(
        a.netns, b.netns, a.private_ip, seconds=seconds, log=logs / "iperf3-overlay.log"
    )
    step(f"iperf3 over the bridge, {nodes[0].label} ← {nodes[1].label} ({seconds} s)")
    bare = tcp_throughput(
        nodes[0], nodes[1], status.nodes[0].address, seconds=seconds, log=logs / "iperf3-bare.log"
    )
    client = bench.plug_client()
    http: dict[str, HttpRun] = {}

    def load(
        name: str, url: str, resolve: tuple[str, str] | None = None, ca: Path | None = None
    ) -> None:
        step(f"wrk on {url}, {args.connections} connections ({seconds} s)")
        http[name] = gateway_requests(
            url, client=client, resolve=resolve, ca=ca, connections=args.connections,
            seconds=seconds, work=bench.work / f"wrk-{name}",
        )  # fmt: skip

    with caddy(nodes[0], bench.work / "caddy") as root:
        address = status.nodes[0].address
        load("caddy_http", f"http://{address}:{CADDY_HTTP_PORT}/")
        load(
            "caddy_https", f"https://{CADDY_NAME}:{CADDY_HTTPS_PORT}/", (CADDY_NAME, address), root
        )
    # The deployment's own gateway (on node 1, the devnet's gateway node), loaded from the
    # devnet's "internet" as a visitor would; or the gateway --gateway-url names.
    host = f"{GATEWAY_NAME}.{status.gateway_domain}"
    url = args.gateway_url or f"https://{host}/"
    resolve = args.gateway_resolve or (None if args.gateway_url else (host, status.gateway_ip))
    ca = args.gateway_ca or (None if args.gateway_url else Path(status.ca))
    world = Netns("internet", links.netns_path(status.internet_netns))
    step(f"wrk on {url} from the devnet's internet, {args.connections} connections ({seconds} s)")
    http["gateway"] = gateway_requests(
        url, client=client if args.gateway_url else world, resolve=resolve, ca=ca,
        connections=args.connections, seconds=seconds, work=bench.work / "wrk-gateway",
    )  # fmt: skip
    progress.remove_task(task)
    result: dict[str, Any] = {
        "seconds": seconds,
        "connections": args.connections,
        "tcp": {
            "overlay": asdict(overlay),
            "bare": asdict(bare),
            "ratio_sender": round(overlay.sender_gbps / bare.sender_gbps, 3),
            "ratio_receiver": round(overlay.receiver_gbps / bare.receiver_gbps, 3),
        },
        "http": {name: asdict(run) for name, run in http.items()},
    }
    if "gateway" in http:
        peer = http["caddy_https" if url.startswith("https:") else "caddy_http"]
        result["http"]["ratio"] = round(http["gateway"].requests_per_s / peer.requests_per_s, 3)
    return result


def _print(console: Console, result: dict[str, Any]) -> None:
    tcp = result["tcp"]
    table = Table(
        title=f"TCP, iperf3 for {result['seconds']} s (Gbit/s)",
        caption="MSS: the path's MTU less 52 bytes (IPv4, TCP and its timestamps)",
    )
    for column in ("path", "sender", "receiver", "retransmits", "MSS"):
        table.add_column(column)
    for name, label in (("overlay", "private network (WireGuard)"), ("bare", "devnet bridge")):
        run = tcp[name]
        table.add_row(label, str(run["sender_gbps"]), str(run["receiver_gbps"]),
                      str(run["retransmits"]), str(run["mss"]))  # fmt: skip
    table.add_row("ratio overlay / bare", str(tcp["ratio_sender"]), str(tcp["ratio_receiver"]))
    console.print(table)
    http = result["http"]
    table = Table(
        title=f"HTTP, wrk {result['connections']} keep-alive connections for "
        f"{result['seconds']} s, {PAGE_BYTES} B page"
    )
    for column in ("server", "requests/s", "MiB/s", "avg ms", "p50 ms", "p99 ms", "errors"):
        table.add_column(column)
    labels = {"caddy_http": "Caddy, HTTP", "caddy_https": "Caddy, HTTPS", "gateway": "gateway"}
    for name, label in labels.items():
        if name in http:
            run = http[name]
            table.add_row(
                label, f"{run['requests_per_s']:.0f}", str(run["transfer_mib_per_s"]),
                str(run["latency_avg_ms"]), str(run["latency_p50_ms"]),
                str(run["latency_p99_ms"]), str(run["errors"]),
            )  # fmt: skip
    if "ratio" in http:
        table.add_row("ratio gateway / Caddy", str(http["ratio"]))
    console.print(table)


def main() -> int:
    args = _arguments()
    console = Console(stderr=True)
    if os.geteuid() != 0:
        console.print("[red]network bench:[/] needs root (namespaces, a devnet)")
        return 1
    missing = [tool for tool in ("iperf3", "wrk", "caddy", "curl", "nsenter", "unshare", "ss")
               if shutil.which(tool) is None]  # fmt: skip
    if missing:
        console.print(f"[red]network bench:[/] missing tools: {', '.join(missing)}")
        return 1
    work = Path(tempfile.mkdtemp(prefix="zgrid-bench-network-"))
    bench = Bench(work)
    code = 0
    result: dict[str, Any] = {}
    try:
        with Progress(console=console, transient=True) as progress:
            result = _measure(args, bench, progress)
    except KeyboardInterrupt:
        console.print("[yellow]network bench: interrupted[/]")
        code = 130
    except (BenchError, ZgridError) as exc:
        console.print(f"[red]network bench:[/] {exc}")
        code = 1
    finally:
        try:
            problems = bench.close(keep=args.keep)
        except KeyboardInterrupt:
            problems, code = ["interrupted while cleaning up"], 130
        for problem in problems:
            console.print(f"[red]network bench: cleanup:[/] {problem}")
        if args.keep:
            console.print(f"devnet kept in {bench.devnet_dir}: ZGRID_HOME={bench.home} "
                          f"ZGRID_KEY_FILE={work / 'store.key'}; take it down with "
                          f"{ZGRID} devnet down --dir {bench.devnet_dir} --purge")  # fmt: skip
        elif not problems:
            shutil.rmtree(work, ignore_errors=True)
        if problems and code == 0:
            code = 1
    if code:
        return code
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(Console(), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
