"""The ledger: signed transactions, blocks, the registry of twins/farms/nodes, contracts, balances.

A validator (:class:`Ledger`) applies transactions through one state machine,
seals signed, hash-linked blocks into SQLite, and serves them over HTTP with an
event stream; everybody else talks to it through :class:`ChainClient`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from zgrid.chain.client import ChainClient
from zgrid.chain.domains.join_tokens import JoinToken, issue_join_token
from zgrid.chain.errors import (
    ChainError,
    ChainStorageError,
    GenesisError,
    LedgerUnavailable,
    NotFound,
    RejectCode,
    TransactionRejected,
    VerificationFailed,
)
from zgrid.chain.genesis import Genesis, init_dev_chain, load_genesis
from zgrid.chain.ledger import Ledger, TxStatus
from zgrid.chain.records import ChainEvent, Interface, Location
from zgrid.chain.sync import SyncChainClient
from zgrid.chain.transaction import SignedTransaction, TransactionBody, sign_transaction
from zgrid.chain.units import UNITS_PER_TOKEN, format_tokens, parse_tokens
from zgrid.chain.verify import VerifyReport, verify_chain

if TYPE_CHECKING:
    from zgrid.chain.api import create_app
    from zgrid.chain.server import parse_listen, serve

# The HTTP server side (FastAPI, uvicorn) is loaded on first use: clients and the
# CLI import this package too and should not pay for a web framework they do not run.
_SERVER_SIDE = {
    "create_app": "zgrid.chain.api",
    "serve": "zgrid.chain.server",
    "parse_listen": "zgrid.chain.server",
}


def __getattr__(name: str) -> Any:
    module = _SERVER_SIDE.get(name)
    if module is None:
        raise AttributeError(f"module 'zgrid.chain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "UNITS_PER_TOKEN",
    "ChainClient",
    "ChainError",
    "ChainEvent",
    "ChainStorageError",
    "Genesis",
    "GenesisError",
    "Interface",
    "JoinToken",
    "Ledger",
    "LedgerUnavailable",
    "Location",
    "NotFound",
    "RejectCode",
    "SignedTransaction",
    "SyncChainClient",
    "TransactionBody",
    "TransactionRejected",
    "TxStatus",
    "VerificationFailed",
    "VerifyReport",
    "create_app",
    "format_tokens",
    "init_dev_chain",
    "issue_join_token",
    "load_genesis",
    "parse_listen",
    "parse_tokens",
    "serve",
    "sign_transaction",
    "verify_chain",
]
