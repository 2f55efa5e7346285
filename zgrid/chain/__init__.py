"""The ledger: signed transactions, blocks, the registry of twins/farms/nodes, contracts, balances.

A validator (:class:`Ledger`) applies transactions through one state machine,
seals signed, hash-linked blocks into SQLite, and serves them over HTTP with an
event stream; everybody else talks to it through :class:`ChainClient`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from zgrid.lazy import lazy_members

if TYPE_CHECKING:
    from zgrid.chain.api import create_app
    from zgrid.chain.block import SignedHeader, check_events, check_header
    from zgrid.chain.client import ChainClient
    from zgrid.chain.domains.join_tokens import JoinToken, issue_join_token
    from zgrid.chain.economy import (
        CERTIFIED_MARKUP,
        DISCOUNT_TIERS,
        HOURS_PER_MONTH,
        discount_percent,
        node_contract_hourly,
        rent_contract_hourly,
        split_payment,
        tokens_for,
        traffic_usd,
    )
    from zgrid.chain.genesis import Genesis, init_dev_chain, load_genesis
    from zgrid.chain.ledger import Ledger, TxStatus
    from zgrid.chain.records import ChainEvent, Interface, Location, PublicConfig
    from zgrid.chain.server import parse_listen, serve
    from zgrid.chain.sync import SyncChainClient
    from zgrid.chain.transaction import SignedTransaction, TransactionBody, sign_transaction
    from zgrid.chain.units import UNITS_PER_TOKEN, format_tokens, parse_tokens
    from zgrid.chain.verify import VerifyReport, verify_chain

# Everything but the errors is loaded on first use: a client needs neither the validator
# (the state machine, its domains, the block store) nor the HTTP server side (FastAPI,
# uvicorn), and the CLI and the other packages import this one for a name or two.
_LAZY = {
    "ChainClient": "zgrid.chain.client",
    "CERTIFIED_MARKUP": "zgrid.chain.economy",
    "DISCOUNT_TIERS": "zgrid.chain.economy",
    "HOURS_PER_MONTH": "zgrid.chain.economy",
    "discount_percent": "zgrid.chain.economy",
    "node_contract_hourly": "zgrid.chain.economy",
    "rent_contract_hourly": "zgrid.chain.economy",
    "split_payment": "zgrid.chain.economy",
    "tokens_for": "zgrid.chain.economy",
    "traffic_usd": "zgrid.chain.economy",
    "JoinToken": "zgrid.chain.domains.join_tokens",
    "issue_join_token": "zgrid.chain.domains.join_tokens",
    "Genesis": "zgrid.chain.genesis",
    "init_dev_chain": "zgrid.chain.genesis",
    "load_genesis": "zgrid.chain.genesis",
    "Ledger": "zgrid.chain.ledger",
    "TxStatus": "zgrid.chain.ledger",
    "ChainEvent": "zgrid.chain.records",
    "SignedHeader": "zgrid.chain.block",
    "check_events": "zgrid.chain.block",
    "check_header": "zgrid.chain.block",
    "Interface": "zgrid.chain.records",
    "Location": "zgrid.chain.records",
    "PublicConfig": "zgrid.chain.records",
    "SyncChainClient": "zgrid.chain.sync",
    "SignedTransaction": "zgrid.chain.transaction",
    "TransactionBody": "zgrid.chain.transaction",
    "sign_transaction": "zgrid.chain.transaction",
    "UNITS_PER_TOKEN": "zgrid.chain.units",
    "format_tokens": "zgrid.chain.units",
    "parse_tokens": "zgrid.chain.units",
    "VerifyReport": "zgrid.chain.verify",
    "verify_chain": "zgrid.chain.verify",
    "create_app": "zgrid.chain.api",
    "serve": "zgrid.chain.server",
    "parse_listen": "zgrid.chain.server",
}


__all__ = [
    "CERTIFIED_MARKUP",
    "DISCOUNT_TIERS",
    "HOURS_PER_MONTH",
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
    "PublicConfig",
    "RejectCode",
    "SignedHeader",
    "SignedTransaction",
    "SyncChainClient",
    "TransactionBody",
    "TransactionRejected",
    "TxStatus",
    "VerificationFailed",
    "VerifyReport",
    "check_events",
    "check_header",
    "create_app",
    "discount_percent",
    "format_tokens",
    "init_dev_chain",
    "issue_join_token",
    "load_genesis",
    "node_contract_hourly",
    "parse_listen",
    "parse_tokens",
    "rent_contract_hourly",
    "serve",
    "sign_transaction",
    "split_payment",
    "tokens_for",
    "traffic_usd",
    "verify_chain",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
