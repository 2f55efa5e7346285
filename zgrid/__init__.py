"""zgrid: a decentralized cloud where nodes are commanded only through a signed ledger."""

__version__ = "0.1.0"
