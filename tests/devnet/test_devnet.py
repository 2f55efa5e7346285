"""`zgrid devnet` end to end, as a newcomer runs it: up, up again, deploy the examples and
reach them from this machine's own shell, the README's tour, and a down that leaves nothing.

One devnet serves the whole module (the machine has one: its host network is
machine-wide); the tests run in file order and the last one takes it down.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.capture import FrameCapture, udp_ports
from tests.conftest import require_root, require_tool
from tests.devnet.devnets import DevnetRun, SpareHost, leftovers
from tests.explorer.compare import answers, fresh_store, index_until, normal
from tests.postgres import PostgresCluster
from tests.processes import ZGRID
from tests.readme import FOREGROUND, README, new_shell, readme_lines
from zgrid.chain import SyncChainClient
from zgrid.devnet.images import debian_root
from zgrid.devnet.layout import Layout
from zgrid.devnet.network import GATEWAY_DOMAIN, Internet, host_netns, internet, public_ranges
from zgrid.explorer import ExplorerStore
from zgrid.node import unique_name
from zgrid.node.runtime.guest import find_kernel
from zgrid.types import GIB

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetRun]:
    require_root()
    for tool in ("runc", "yggdrasil", "debootstrap", "busybox", "mkfs.ext4", "losetup", "nsenter"):
        require_tool(tool)
    run = DevnetRun(tmp_path_factory.mktemp("devnet"))
    try:
        run.up_first()
        yield run
    finally:
        run.close()


@pytest.fixture(scope="module")
def deployer(devnet: DevnetRun) -> DevnetRun:
    """The devnet's client side: an identity with tokens in the run's $ZGRID_HOME."""
    devnet.zgrid("identity", "new")
    devnet.zgrid("account", "faucet", "1000")
    return devnet


def test_up_brings_a_ledger_a_hub_and_nodes_each_in_its_own_namespace(devnet: DevnetRun) -> None:
    status = devnet.first_status
    assert status["running"] is True
    assert [n["name"] for n in status["nodes"]] == ["node-1", "node-2"]
    assert len({n["netns"] for n in status["nodes"]}) == 2
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    for node in status["nodes"]:
        assert node["netns"] in netns
        assert node["node_id"] is not None
        # This machine reaches each node at its own address: here its Zero-DB's port.
        with socket.create_connection((node["address"], 9900), timeout=10):
            pass
    with SyncChainClient(status["ledger_url"]) as chain:
        nodes = chain.query("nodes", size=100)["items"]
        assert {n["id"] for n in nodes} == {n["node_id"] for n in status["nodes"]}
        # Each node registered from its own host: its own address on the devnet's bridge.
        assert chain.genesis()["chain_id"]
    hub = httpx.get(f"{status['hub_url']}/flists", timeout=10).json()
    assert hub, "the hub has the base images"
    owner = hub[0]["owner"]
    names = {f["name"] for f in httpx.get(f"{status['hub_url']}/flists/{owner}", timeout=10).json()}
    assert {"busybox", "debian"} <= names
    # The client's network is configured and current: `zgrid deploy` works at once.
    networks = devnet.zgrid_json("network", "ls")
    assert networks["current"] == "devnet"
    found = {n["name"]: n for n in networks["networks"]}
    assert found["devnet"]["ledger"] == status["ledger_url"]
    assert found["devnet"]["hub"] == status["hub_url"]
    assert found["devnet"]["explorer"] == status["explorer_url"]


def test_the_explorer_lists_the_devnets_nodes_up_with_room_on_them(devnet: DevnetRun) -> None:
    status = devnet.first_status
    explorer = status["explorer_url"]
    assert explorer.startswith(status["ledger_url"].rsplit(":", 1)[0] + ":")
    assert [c["name"] for c in status["components"]] == ["ledger", "hub", "explorer", "yggdrasil"]
    wanted = {n["node_id"]: "up" for n in status["nodes"]}
    deadline = time.monotonic() + 60
    while True:  # each node's first uptime report comes just after it joined
        listed = httpx.get(f"{explorer}/nodes", params={"size": 100}, timeout=10).json()
        if {n["nodeId"]: n["status"] for n in listed} == wanted:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(1)
    for node in listed:
        # What a node declares less its reserve (max(10 %, 2 GiB), 20 GiB) leaves room.
        free = node["free_resources"]
        assert free["mru"] >= 1024**3 and free["sru"] >= 5 * 1024**3, node
    # `zgrid nodes` reads the network's explorer.
    shown = devnet.zgrid("nodes")
    assert shown.stdout.splitlines()[-1] == f"2 node(s) on the explorer at {explorer}"


def test_up_again_finds_everything_running_and_changes_nothing(devnet: DevnetRun) -> None:
    started = time.monotonic()
    again = devnet.zgrid_json("devnet", "up", timeout=120)
    took = time.monotonic() - started
    before = devnet.first_status
    assert [c["pid"] for c in again["components"]] == [c["pid"] for c in before["components"]]
    assert [n["pid"] for n in again["nodes"]] == [n["pid"] for n in before["nodes"]]
    assert [n["node_id"] for n in again["nodes"]] == [n["node_id"] for n in before["nodes"]]
    assert took < 30, f"a second up took {took:.0f} s"
    status = devnet.zgrid("devnet", "status")
    assert "node-2" in status.stdout


def test_logs_show_each_part(devnet: DevnetRun) -> None:
    ledger = devnet.zgrid("devnet", "logs", "ledger", "-n", "5")
    assert ledger.stdout.strip()
    explorer = devnet.zgrid("devnet", "logs", "explorer", "-n", "50")
    assert "explorer of" in explorer.stdout, explorer.stdout
    bad = devnet.zgrid("devnet", "logs", "nothing", check=False)
    assert bad.returncode == 2 and "ledger" in bad.stderr


def _address(view: dict[str, Any], name: str) -> str:
    for workload in view["workloads"]:
        if workload["name"] == name and workload["planetary_ip"]:
            return str(workload["planetary_ip"])
    raise AssertionError(f"no planetary address for {name}: {view}")


def _get(url: str, *, timeout: float = 60, **options: Any) -> httpx.Response:
    """From this machine's own namespace (the host's yggdrasil routes the planetary range)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.request(options.pop("method", "GET"), url, timeout=5, **options)
            if answer.status_code < 500 or time.monotonic() > deadline:
                return answer
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_the_key_value_app_stores_into_its_zdb_namespace(deployer: DevnetRun) -> None:
    explorer = deployer.first_status["explorer_url"]
    plan = deployer.zgrid_json("plan", str(EXAMPLES / "kv.yaml"))
    assert plan["nodes_from"] == {"source": "explorer", "url": explorer}
    deployed = deployer.zgrid("deploy", str(EXAMPLES / "kv.yaml"), timeout=300)
    assert f"planned with nodes from the explorer at {explorer}" in deployed.stderr
    address = _address(deployer.zgrid_json("show", "kv"), "kv")
    base = f"http://[{address}]:8080/cgi-bin/kv"
    assert _get(f"{base}?greeting").status_code == 404
    stored = _get(f"{base}?greeting", method="POST", content=b"hello kv")
    assert stored.status_code == 200 and "stored greeting" in stored.text, stored.text
    read = _get(f"{base}?greeting")
    assert (read.status_code, read.text.strip()) == (200, "hello kv")
    assert _get(f"{base}?bad/key").status_code == 400
    # What it stored is in the namespace itself, read with the node's zdb from outside.
    view = deployer.zgrid_json("show", "kv")
    zdb = next(w for w in view["workloads"] if w["type"] == "zdb")
    assert zdb["data"]["namespace"].endswith("-data")
    # It stays: the last test finds it again after a down and an up.


def test_a_debian_container_runs_from_the_debian_flist(deployer: DevnetRun) -> None:
    spec = deployer.work / "debian.yaml"
    spec.write_text(
        "name: deb\n"
        "machines:\n"
        "  - name: os\n"
        "    flist: debian\n"
        "    cpu: 1\n"
        "    memory: 256MiB\n"
        "    entrypoint: /bin/bash -c 'echo debian $(cat /etc/debian_version); exec sleep 3600'\n"
    )
    deployer.zgrid("deploy", str(spec), timeout=300)
    deadline = time.monotonic() + 60
    while "debian 12" not in (output := deployer.zgrid("logs", "deb/os").stdout):
        assert time.monotonic() < deadline, output
        time.sleep(1)
    deployer.zgrid("destroy", "deb", "--yes", timeout=120)


def test_the_debian_vm_example_answers_ssh_on_its_planetary_address(deployer: DevnetRun) -> None:
    """examples/debian-vm.yaml with the deployer's own key: the VM's kernel, its disk at its
    mountpoint with its size, and the cores and memory it was given, read over SSH."""
    for tool in ("qemu-system-x86_64", "ssh", "ssh-keygen"):
        require_tool(tool)
    key = deployer.work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    text = (EXAMPLES / "debian-vm.yaml").read_text()
    text, keys = re.subn(r"(?m)^(\s+ssh_keys: )\[.*\]$", rf'\1["{public}"]', text)
    assert keys == 1, "the example names one key to replace"
    spec = deployer.work / "debian-vm.yaml"
    spec.write_text(text)
    deployer.zgrid("deploy", str(spec), timeout=600)
    view = deployer.zgrid_json("show", "debian-vm")
    address = _address(view, "vm")
    shown = deployer.zgrid("show", "debian-vm").stdout
    assert "virtual machine under qemu, " in shown and address in shown, shown
    answer = _ssh(
        key,
        address,
        "uname -a; nproc; grep MemTotal /proc/meminfo; df -B1 --output=target,size /data; "
        "ls /etc/ssh",
    )
    lines = answer.splitlines()
    kernel = find_kernel().version
    assert lines[0].startswith("Linux vm ") and f" {kernel} " in lines[0], answer
    assert lines[1] == "2", answer
    memory_kib = int(lines[2].split()[1])
    assert 0.85 * GIB <= memory_kib * 1024 <= GIB, answer
    mount, size = lines[4].split()
    assert mount == "/data" and 0.9 * 2 * GIB <= int(size) <= 2 * GIB, answer
    # Its host key is its own, made on its first boot: the flist carries none.
    assert "ssh_host_ed25519_key" in lines[5:], answer
    assert not list((debian_root() / "etc/ssh").glob("ssh_host_*"))
    # Its console is its log: the first process's word, then sshd's own.
    console = deployer.zgrid("logs", "debian-vm/vm").stdout
    assert "zgrid-init: ready" in console and "Server listening on" in console, console
    deployer.zgrid("destroy", "debian-vm", "--yes", timeout=180)


def _ssh(key: Path, address: str, command: str, *, timeout: float = 120) -> str:
    """``command``'s output over SSH as root, once the machine's SSH server answers."""
    argv = [
        "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
        f"root@{address}", command,
    ]  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0:
            return done.stdout
        assert time.monotonic() < deadline, f"ssh exit {done.returncode}: {done.stderr}"
        time.sleep(1)


def test_machines_on_two_nodes_reach_each_other_over_their_private_network(
    deployer: DevnetRun,
) -> None:
    """examples/private-net.yaml: a replica on each node, each reaching the other over the
    WireGuard network the client built, the nodes' traffic encrypted on the devnet bridge."""
    deployer.zgrid("deploy", str(EXAMPLES / "private-net.yaml"), timeout=300)
    view = deployer.zgrid_json("show", "private-net")
    machines = {w["name"]: w for w in view["workloads"] if w["type"] == "zmachine"}
    assert set(machines) == {"web_0", "web_1"}
    assert machines["web_0"]["node_id"] != machines["web_1"]["node_id"]
    ips = {name: w["data"]["ip"] for name, w in machines.items()}
    assert sorted(ips.values()) == ["10.60.1.2", "10.60.2.2"]
    shown = deployer.zgrid("show", "private-net").stdout
    assert f"private: {ips['web_0']} (net)" in shown, shown
    # Each page lists what its machine reached over the private network: the other one.
    for name, other in (("web_0", "web-1"), ("web_1", "web-0")):
        address = machines[name]["planetary_ip"]
        deadline = time.monotonic() + 60
        while other not in (page := _get(f"http://[{address}]:8080/").text):
            assert time.monotonic() < deadline, page
            time.sleep(1)
    # Between the nodes it is WireGuard: UDP to the networks' ports, no plaintext.
    state = Layout(deployer.dir).load()
    ports = {
        int(w["data"]["wireguard_listen_port"]) for w in view["workloads"] if w["type"] == "network"
    }
    capture = FrameCapture(host_netns(state, 1).veth)  # node 1's link to the devnet bridge
    try:
        for _ in range(3):
            _get(f"http://[{machines['web_0']['planetary_ip']}]:8080/")
            time.sleep(2.5)  # a round of the pages' fetches
    finally:
        frames = capture.stop()
    assert ports <= udp_ports(frames), (ports, udp_ports(frames))
    assert not any(b"web-1" in frame or b"web-0" in frame for frame in frames), "plaintext"

    # The deployer's own machine (here a netns of its own on the devnet's bridge) joins
    # the network with the wg-quick configuration `zgrid network access` prints.
    config = deployer.zgrid("network", "access", "private-net", timeout=180).stdout
    assert config == deployer.zgrid("network", "access", "private-net").stdout  # kept
    assert "Address = 10.60.255.2/32" in config and config.count("[Peer]") == 2
    laptop = SpareHost(deployer.dir, "laptop")
    conf = deployer.work / f"{unique_name('zgwq', str(deployer.dir))}.conf"
    conf.write_text(config)
    conf.chmod(0o600)
    quick = {**os.environ, "WG_QUICK_USERSPACE_IMPLEMENTATION": "wireguard-go"}
    try:
        laptop.plug()
        subprocess.run(
            laptop.command(["wg-quick", "up", str(conf)]), env=quick, check=True,
            capture_output=True, timeout=60,
        )  # fmt: skip
        for ip, name in ((ips["web_0"], "web-0"), (ips["web_1"], "web-1")):
            deadline = time.monotonic() + 30
            while True:
                done = subprocess.run(
                    laptop.command(["curl", "-s", "-m", "3", f"http://{ip}:8081/name"]),
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.stdout.strip() == name:
                    break
                assert time.monotonic() < deadline, (ip, done)
                time.sleep(0.5)
    finally:
        subprocess.run(
            laptop.command(["wg-quick", "down", str(conf)]), env=quick, capture_output=True,
            check=False, timeout=60,
        )  # fmt: skip
        laptop.unplug()
    deployer.zgrid("destroy", "private-net", "--yes", timeout=180)


def test_the_host_routes_the_devnets_public_ranges_to_its_bridge_only(devnet: DevnetRun) -> None:
    """The devnet's "public" addresses live in its namespaces: this machine sends every
    packet for them into the devnet's bridge, none to its own way out, and no link of its
    own namespace holds one."""
    state = Layout(devnet.dir).load()
    ranges = [ipaddress.ip_network(prefix) for prefix in public_ranges(state)]
    assert ipaddress.ip_interface(state.farm_ips[0][0]).network == ranges[0]
    documentation = [
        ipaddress.ip_network(d)
        for d in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    ]
    for network in ranges:
        assert any(network.overlaps(d) and network.prefixlen >= d.prefixlen for d in documentation)
    for network in ranges:
        for address in (network[1], network[7], network[-2]):
            shown = subprocess.run(
                ["ip", "-j", "route", "get", str(address)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            (route,) = json.loads(shown.stdout)
            assert route["dev"] == state.bridge, (address, route)
    shown = subprocess.run(["ip", "-j", "address"], capture_output=True, text=True, check=True)
    mine = [info["local"] for link in json.loads(shown.stdout) for info in link["addr_info"]]
    assert not [a for a in mine if any(ipaddress.ip_address(a) in r for r in ranges)], mine


def test_a_machine_on_a_public_ip_answers_from_the_internet_and_gives_it_back(
    deployer: DevnetRun,
) -> None:
    """examples/public-web.yaml: a farm IPv4 reserved by the contract on the ledger, served
    from the devnet's "internet" (and this machine's shell), released when destroyed."""
    deployer.zgrid("deploy", str(EXAMPLES / "public-web.yaml"), timeout=300)
    view = deployer.zgrid_json("show", "public-web")
    (web,) = [w for w in view["workloads"] if w["type"] == "zmachine"]
    ipv4, ipv6 = web["data"]["public_ip"], web["data"]["public_ip6"]
    state = Layout(deployer.dir).load()
    assert ipv4 in [ip for ip, _ in state.farm_ips], web
    assert ipaddress.ip_interface(ipv6).network == ipaddress.ip_network(public_ranges(state)[1])
    assert f"public: {ipv4}" in deployer.zgrid("show", "public-web").stdout
    (contract,) = view["contracts"]
    with SyncChainClient(Layout(deployer.dir).load().ledger_url) as chain:
        held = chain.contract(contract["id"])["public_ips"]
        assert [ip["ip"] for ip in held] == [ipv4]
        farm_id = chain.node(web["node_id"])["farm_id"]
    world = internet(state)
    address, address6 = ipv4.split("/")[0], ipv6.split("/")[0]
    for url in (f"http://{address}/", f"http://[{address6}]/"):
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(
                world.command(["curl", "-s", "-m", "3", url]),
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if "hello from a public address" in done.stdout:
                break
            assert time.monotonic() < deadline, (url, done)
            time.sleep(1)
        assert address in done.stdout  # the page lists its pub link's addresses
    assert "hello from a public address" in _get(f"http://{address}/").text  # from the host

    deployer.zgrid("destroy", "public-web", "--yes", timeout=180)
    with SyncChainClient(Layout(deployer.dir).load().ledger_url) as chain:
        farm = chain.farm(farm_id)
    assert [ip for ip in farm["public_ips"] if ip["contract_id"]] == [], farm


def _through(world: Internet, argv: list[str], want: str, *, timeout: float = 90) -> str:
    """``argv`` run from the devnet's "internet" until its output holds ``want``."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            world.command(argv), capture_output=True, text=True, check=False, input=""
        )
        if want in done.stdout:
            return done.stdout
        assert time.monotonic() < deadline, (argv, done)
        time.sleep(1)


def test_gateways_serve_a_name_a_domain_and_passthrough_tls_and_names_are_one_twins(
    deployer: DevnetRun, tmp_path: Path
) -> None:
    """examples/gateway-web.yaml through node 1, the gateway node: hello.<domain> and an
    FQDN over HTTPS verified against the devnet's CA, a passthrough name showing the
    machine's own certificate; another twin cannot take the name."""
    deployer.zgrid("deploy", str(EXAMPLES / "gateway-web.yaml"), timeout=420)
    view = deployer.zgrid_json("show", "gateway-web")
    gateways = {w["name"]: w for w in view["workloads"] if w["type"].startswith("gateway")}
    assert {w["data"]["fqdn"] for w in gateways.values()} == {
        f"hello.{GATEWAY_DOMAIN}",
        "www.example.test",
        f"secure.{GATEWAY_DOMAIN}",
    }, gateways
    status = deployer.zgrid_json("devnet", "status")
    assert {w["node_id"] for w in gateways.values()} == {status["nodes"][0]["node_id"]}
    assert f"https://hello.{GATEWAY_DOMAIN}/" in deployer.zgrid("show", "gateway-web").stdout
    state = Layout(deployer.dir).load()
    world, address, ca = internet(state), status["gateway_ip"], status["ca"]
    for host in (f"hello.{GATEWAY_DOMAIN}", "www.example.test"):
        page = _through(
            world,
            ["curl", "-sS", "-m", "5", "--cacert", ca, "--resolve", f"{host}:443:{address}",
             f"https://{host}/"],
            "hello through a gateway",
        )  # fmt: skip
        assert "<h1>" in page
    shown = _through(
        world,
        ["openssl", "s_client", "-connect", f"{address}:443", "-servername",
         f"secure.{GATEWAY_DOMAIN}", "-CAfile", ca],
        "BEGIN CERTIFICATE",
    )  # fmt: skip
    # The machine's own self-signed certificate, not one of the devnet's CA.
    assert f"subject=CN = secure.{GATEWAY_DOMAIN}" in shown
    assert f"issuer=CN = secure.{GATEWAY_DOMAIN}" in shown, shown
    with SyncChainClient(state.ledger_url) as chain:
        held = chain.name_contract("hello")
    assert held is not None and held["type"] == "name", held

    # Another twin (its own home, its own identity) cannot have the name.
    other = {**deployer.env(), "ZGRID_HOME": str(tmp_path / "other")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ZGRID, *args], capture_output=True, text=True, env=other, timeout=300,
            check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    assert run("devnet", "up", "--json").returncode == 0
    assert run("identity", "new").returncode == 0
    assert run("account", "faucet", "100").returncode == 0
    spec = tmp_path / "taken.yaml"
    spec.write_text((EXAMPLES / "gateway-web.yaml").read_text().replace("gateway-web", "taken"))
    refused = run("deploy", str(spec))
    assert refused.returncode == 1, refused
    assert "gateway name 'hello' is taken" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert json.loads(run("ls", "--json").stdout) == []

    deployer.zgrid("destroy", "gateway-web", "--yes", timeout=180)
    with SyncChainClient(state.ledger_url) as chain:
        assert chain.name_contract("hello") is None  # given back with the deployment


def test_the_devnets_ledger_indexes_alike_into_sqlite_and_postgresql(
    deployer: DevnetRun, tmp_path: Path
) -> None:
    """The ledger the devnet's nodes and deployers wrote (registrations, uptime, contracts,
    results, bills): indexed from genesis into SQLite and into PostgreSQL, the same rows and
    the same answers to the grid proxy's queries."""
    ledger = deployer.first_status["ledger_url"]
    height = int(httpx.get(f"{ledger}/chain/head", timeout=10).json()["height"])
    sqlite = fresh_store(tmp_path / "explorer.db")
    with PostgresCluster() as cluster:
        postgres = ExplorerStore(cluster.create_database("devnet"))
        try:
            postgres.migrate()
            assert index_until(sqlite, ledger, until=height) == height
            assert index_until(postgres, ledger, until=height) == height
            rows = normal(sqlite.dump())
            assert rows == normal(postgres.dump())
            assert len(rows["nodes"]) >= 2 and rows["contracts"] and rows["bills"]
            assert answers(sqlite) == answers(postgres)
        finally:
            postgres.close()
            sqlite.close()


# What some of the README's lines must print: the tour's page, fetched from this machine's
# own shell over the planetary network, and the machine's own output; the joined node.
SHOWS = {
    "curl -g": "<h1>hello from zgrid</h1>",
    "zgrid logs hello-web/web": "serving: hello from zgrid",
    "zgrid nodes --farm my-farm": "1 node(s)",
}


def test_the_readme_runs_as_written(devnet: DevnetRun, tmp_path: Path) -> None:
    """Every sh block of the README, in order, in a fresh user's shell: the tour against
    this devnet (as after `make demo`), the node section on a "machine" of its own (a new
    netns on the devnet's bridge), the parts by hand on this machine."""
    for tool in ("redis-cli", "busybox", "fusermount3", "curl", "jq"):
        require_tool(tool)
    if not Path("/dev/fuse").exists():
        pytest.fail("the flist mount line needs /dev/fuse")
    shell = new_shell(tmp_path, ZGRID_DEVNET_DIR=str(devnet.dir))
    machine = SpareHost(devnet.dir, "readme")
    seen: set[str] = set()
    try:
        machine.plug()
        for line in readme_lines(README.read_text(encoding="utf-8")):
            shell.wrap = machine.command if line.section == "Running a node" else list
            shell.check_servers()
            command = shell.rewrite(line.text)
            if FOREGROUND in line.text:
                shell.start(command)
                continue
            result = shell.run(command)
            if result.returncode != 0:
                pytest.fail(
                    f"README line failed with exit {result.returncode}: {line.text}\n"
                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
                )
            for start, expected in SHOWS.items():
                if line.text.startswith(start):
                    assert expected in result.stdout, (line.text, result.stdout)
                    seen.add(start)
        shell.check_servers()
        assert seen == set(SHOWS)
    finally:
        shell.stop()
        machine.unplug(shell.node_data)


def test_down_leaves_nothing_of_the_devnet(devnet: DevnetRun) -> None:
    status = devnet.zgrid_json("devnet", "status")
    marks = devnet.marks(status)
    assert leftovers(marks), "the devnet's traces are visible while it runs"
    done = devnet.zgrid("devnet", "down", timeout=180)
    assert "nothing of it left running" in done.stdout
    assert leftovers(marks) == {}, leftovers(marks)
    again = devnet.zgrid("devnet", "status", check=False)
    assert again.returncode == 1
    # `down` twice is fine, and the data stays for the next `up`.
    devnet.zgrid("devnet", "down", timeout=60)
    assert (devnet.dir / "chain" / "genesis.json").exists()
    assert os.path.exists(devnet.dir / "devnet.json")
    # The next `up` starts the same chain; the nodes restore the contracts' workloads,
    # with what the key-value service stored in its namespace.
    devnet.zgrid("devnet", "up", timeout=300)
    address = _address(devnet.zgrid_json("show", "kv"), "kv")
    read = _get(f"http://[{address}]:8080/cgi-bin/kv?greeting", timeout=120)
    assert (read.status_code, read.text.strip()) == (200, "hello kv")
    devnet.zgrid("destroy", "kv", "--yes", timeout=120)
    devnet.zgrid("devnet", "down", timeout=180)
    assert leftovers(marks) == {}, leftovers(marks)
