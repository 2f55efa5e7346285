"""Names the node gives things on the machine: netns, links, cgroups, runc ids, bridges,
and the hardware addresses of VMs' network cards.

Several nodes can share one machine (tests, devnet) and the kernel's namespaces are
machine-wide, so every name is derived from the node's scope (its data directory) and
the workload id through a digest, and fits the kernel's 15-character limit for links.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["LINK_NAME_MAX", "machine_mac", "node_scope", "unique_name"]

LINK_NAME_MAX = 15  # IFNAMSIZ - 1


def unique_name(prefix: str, *parts: str, length: int = LINK_NAME_MAX) -> str:
    """``prefix`` + a hex digest of ``parts``, ``length`` characters in all.

    The same parts always give the same name (so a restarted node finds its things
    again); different scopes or workloads give different names.
    """
    if not prefix.isalnum() or not prefix.isascii() or len(prefix) > length - 8:
        raise ValueError(f"prefix {prefix!r} must be short ASCII letters/digits")
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()
    return prefix + digest[: length - len(prefix)]


def node_scope(data_dir: Path) -> str:
    """A string unique to this node on the machine: names of its kernel objects derive from it."""
    return unique_name("n", str(data_dir.resolve()), length=12)


def machine_mac(oui: str, *parts: str) -> str:
    """A network card's address: the locally administered ``oui`` (three octets, like
    ``52:54:00``) and a digest of ``parts``, the same for the same card after any restart."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=3, person=b"zgrid-vm-mac")
    return oui + ":" + ":".join(f"{byte:02x}" for byte in digest.digest())
