"""Where a devnet keeps everything under its directory, and its state file.

The state file (``devnet.json``) records what `up` chose once and must keep across runs:
the bridge, the subnet, the number of nodes. Everything else is found again from the
files beside it (the ledger's data, the keys, the pid files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.devnet.errors import DevnetBusy, DevnetError, DevnetNotFound

__all__ = [
    "DEFAULT_DIR",
    "EXPLORER_PORT",
    "HUB_PORT",
    "LEDGER_PORT",
    "YGGDRASIL_PORT",
    "DevnetState",
    "Layout",
    "default_dir",
]

DEFAULT_DIR = Path("/var/lib/zgrid/devnet")
LEDGER_PORT = 8700
HUB_PORT = 8780
EXPLORER_PORT = 8800
YGGDRASIL_PORT = 7443  # on every host of the devnet and on the bridge's root side
_STATE_VERSION = 1
_PREFIX = re.compile(r"^10\.(\d{1,3})\.(\d{1,3})$")
_MACHINE_REGISTRY = Path("/run/zgrid/devnet")
# RFC 5737 and RFC 3849: never anyone's address on the internet; chosen among those this
# machine's own routes do not touch (a machine may sit on one of them itself).
_PUBLIC_PREFIXES = ("203.0.113", "198.51.100", "192.0.2")
_PUBLIC_PREFIXES6 = ("2001:db8:113::", "2001:db8:5100::")  # the one devnet of this machine (tmpfs)


def default_dir() -> Path:
    """$ZGRID_DEVNET_DIR, else /var/lib/zgrid/devnet: one devnet per machine."""
    chosen = os.environ.get("ZGRID_DEVNET_DIR")
    return Path(chosen).expanduser().absolute() if chosen else DEFAULT_DIR


@dataclass
class DevnetState:
    """What `up` chose the first time, kept in ``devnet.json``."""

    prefix: str  # the devnet's /24 as its first three octets (10.x.y)
    bridge: str
    nodes: int
    block_time: float
    version: int = _STATE_VERSION
    # The farm's public segment: a documentation /24 (and /64) this machine does not use.
    public_prefix: str = ""  # first three octets, e.g. 203.0.113
    public_prefix6: str = ""  # e.g. "2001:db8:113::"; empty: the devnet has no IPv6

    @property
    def farm_gateway(self) -> str:
        return f"{self.public_prefix}.1"

    @property
    def farm_ips(self) -> list[tuple[str, str]]:
        """The farm's public IPs (address/prefix, gateway) as its farmer adds them."""
        return [(f"{self.public_prefix}.{n}/24", self.farm_gateway) for n in range(10, 14)]

    @property
    def gateway_node_ip(self) -> str:
        """Node 1's own public address: it is the devnet's gateway node."""
        return f"{self.public_prefix}.2/24"

    @property
    def farm_gateway6(self) -> str:
        return f"{self.public_prefix6}1" if self.public_prefix6 else ""

    def node_public_ip6(self, number: int) -> str:
        """Node ``number``'s own IPv6 on the farm's segment (machines get theirs in its /64)."""
        return f"{self.public_prefix6}{number + 1}/64" if self.public_prefix6 else ""

    @property
    def gateway(self) -> str:
        """The bridge's root-side address: where the ledger, hub, explorer and host
        yggdrasil listen."""
        return f"{self.prefix}.1"

    @property
    def ledger_url(self) -> str:
        return f"http://{self.gateway}:{LEDGER_PORT}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.gateway}:{HUB_PORT}"

    @property
    def explorer_url(self) -> str:
        return f"http://{self.gateway}:{EXPLORER_PORT}"

    def node_address(self, number: int) -> str:
        """Node ``number`` (1, 2 …) is host .(number + 1) on the bridge."""
        return f"{self.prefix}.{number + 1}"

    @classmethod
    def from_json(cls, document: object, source: Path) -> DevnetState:
        try:
            if not isinstance(document, dict) or document.get("version") != _STATE_VERSION:
                raise ValueError("unknown version")
            state = cls(
                prefix=str(document["prefix"]),
                bridge=str(document["bridge"]),
                nodes=int(document["nodes"]),
                block_time=float(document["block_time"]),
                public_prefix=str(document.get("public_prefix", "")),
                public_prefix6=str(document.get("public_prefix6", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DevnetError(f"{source} is not a devnet state file ({exc})") from None
        found = _PREFIX.match(state.prefix)
        if found is None or not all(0 <= int(part) <= 255 for part in found.groups()):
            raise DevnetError(f"{source}: bad prefix {state.prefix!r}")
        if state.public_prefix and state.public_prefix not in _PUBLIC_PREFIXES:
            raise DevnetError(f"{source}: bad public prefix {state.public_prefix!r}")
        if state.public_prefix6 and state.public_prefix6 not in _PUBLIC_PREFIXES6:
            raise DevnetError(f"{source}: bad public IPv6 prefix {state.public_prefix6!r}")
        if not 1 <= state.nodes <= 20:  # as `zgrid devnet up --nodes` allows
            raise DevnetError(f"{source}: bad node count {state.nodes}")
        return state


class Layout:
    """The files of the devnet in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    @property
    def state_file(self) -> Path:
        return self.root / "devnet.json"

    @property
    def chain(self) -> Path:
        return self.root / "chain"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def explorer(self) -> Path:
        """The explorer's database (SQLite) and nothing else: deleting it re-indexes."""
        return self.root / "explorer"

    @property
    def explorer_db(self) -> str:
        return f"sqlite:///{self.explorer / 'explorer.db'}"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def ca(self) -> Path:
        """The devnet's certificate authority (``ca.pem``): its gateways' certificates chain
        to it, so ``curl --cacert <dir>/ca/ca.pem`` verifies them."""
        return self.root / "ca"

    @property
    def yggdrasil(self) -> Path:
        return self.root / "yggdrasil"

    @property
    def images(self) -> Path:
        """Image builds and the blocks published from them."""
        return self.root / "images"

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> DevnetState:
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            raise DevnetNotFound(
                f"no devnet in {self.root} (start one with `zgrid devnet up`)"
            ) from None
        except OSError as exc:
            raise DevnetError(f"cannot read {self.state_file}: {exc.strerror or exc}") from exc
        if len(raw) > 64 * 1024:
            raise DevnetError(f"{self.state_file} is too large to be a devnet state file")
        try:
            document = json.loads(raw)
        except ValueError:
            raise DevnetError(f"{self.state_file} is not JSON") from None
        return DevnetState.from_json(document, self.state_file)

    def save(self, state: DevnetState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"
        write_atomic(self.state_file, text.encode(), mode=0o644)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the devnet's lock: one `up` or `down` at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DevnetBusy(
                    f"another `zgrid devnet` command is at work on {self.root}; wait for it"
                ) from None
            yield
        finally:
            os.close(fd)

    # -- the machine's one devnet ---------------------------------------------------------

    def claim_machine(self, registry: Path = _MACHINE_REGISTRY) -> None:
        """Record this devnet as the machine's; refuse while another one is up."""
        other = _registered(registry)
        if other is not None and other != self.root and Layout(other).exists():
            raise DevnetBusy(
                f"a devnet from {other} runs on this machine (its host network and planetary "
                f"routes are machine-wide); stop it first: zgrid devnet down --dir {other}"
            )
        registry.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(registry, f"{self.root}\n".encode(), mode=0o644)

    def release_machine(self, registry: Path = _MACHINE_REGISTRY) -> None:
        if _registered(registry) == self.root:
            registry.unlink(missing_ok=True)


def _registered(registry: Path) -> Path | None:
    try:
        text = registry.read_text().strip()
    except OSError:
        return None
    return Path(text) if text else None
