"""Errors of zgrid.chain.

ChainError
├── TransactionRejected     the ledger refused a transaction; ``code`` says which rule
├── NotFound                no such block, transaction or entity
├── StorageError            the block store is unreadable, damaged or cannot be written
├── GenesisError            the genesis file is missing or invalid
├── VerificationFailed      replaying the block log does not reach the stored state
└── LedgerUnavailable       the client cannot reach the ledger, or it answered nonsense
"""

from __future__ import annotations

from enum import StrEnum

from zgrid.errors import ZgridError

__all__ = [
    "ChainError",
    "GenesisError",
    "LedgerUnavailable",
    "NotFound",
    "RejectCode",
    "StorageError",
    "TransactionRejected",
    "VerificationFailed",
]


class ChainError(ZgridError):
    """Root of the chain package's errors."""


class RejectCode(StrEnum):
    """Why a transaction was refused; stable strings clients can branch on."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_CHAIN = "wrong_chain"
    BAD_NONCE = "bad_nonce"
    UNKNOWN_CALL = "unknown_call"
    INVALID_ARGS = "invalid_args"
    FORBIDDEN = "forbidden"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    MEMPOOL_FULL = "mempool_full"


class TransactionRejected(ChainError):
    """The ledger refused a transaction; nothing of it was applied."""

    def __init__(self, code: RejectCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class NotFound(ChainError):
    """No block, transaction or entity with that id."""


class StorageError(ChainError):
    """The block store cannot be read or written."""


class GenesisError(ChainError):
    """The genesis document is missing or invalid."""


class VerificationFailed(ChainError):
    """Replaying the block log gives a different result than what is stored."""


class LedgerUnavailable(ChainError):
    """The ledger could not be reached or gave an answer the client cannot use."""
