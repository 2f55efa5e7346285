"""The README's shell blocks are found, and say nothing a fresh machine cannot do.

They run, in order, against a devnet in tests/devnet/test_devnet.py.
"""

from __future__ import annotations

import ipaddress
import re

from tests.readme import FOREGROUND, NODE_DATA, README, readme_lines


def test_readme_lines_are_found() -> None:
    lines = readme_lines(README.read_text(encoding="utf-8"))
    sections = list(dict.fromkeys(line.section for line in lines))
    assert sections == ["A five-minute tour", "Running a node", "The parts by hand"]
    assert lines[0].text.startswith("export PATH=")
    assert lines[2].text.startswith("zgrid devnet up")
    servers = [line for line in lines if FOREGROUND in line.text]
    assert len(servers) == 5  # the node, the ledger, zdb, the mount, the hub
    assert any(NODE_DATA in line.text for line in lines if line.section == "Running a node")


DOCUMENTATION = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def test_every_address_is_loopback_or_a_documentation_range() -> None:
    for line in readme_lines(README.read_text(encoding="utf-8")):
        for found in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", line.text):
            address = ipaddress.ip_address(found)
            assert address.is_loopback or any(address in n for n in DOCUMENTATION), line.text
