"""Errors of zgrid.chain.

ChainError
├── TransactionRejected     the ledger refused a transaction; ``code`` says which rule
├── NotFound                no such block, transaction or entity
├── ChainStorageError       the block store is unreadable, damaged or cannot be written
├── GenesisError            the genesis file is missing or invalid
├── VerificationFailed      replaying the block log does not reach the stored state
├── UnstorableRecord        a transaction would store a record the ledger cannot keep
└── LedgerUnavailable       the client cannot reach the ledger, or it answered nonsense
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

from zgrid.errors import ZgridError


class _ValidationErrors(Protocol):
    """pydantic's ValidationError, or FastAPI's RequestValidationError."""

    def errors(self) -> Sequence[Any]: ...


__all__ = [
    "ChainError",
    "ChainStorageError",
    "GenesisError",
    "LedgerUnavailable",
    "NotFound",
    "RejectCode",
    "TransactionRejected",
    "UnstorableRecord",
    "VerificationFailed",
    "describe_validation_error",
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
    FAILED = "failed"  # the call broke while being applied; refused alone, nothing kept


class TransactionRejected(ChainError):
    """The ledger refused a transaction; nothing of it was applied."""

    def __init__(self, code: RejectCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class NotFound(ChainError):
    """No block, transaction or entity with that id."""


class ChainStorageError(ChainError):
    """The block store cannot be read or written."""


class GenesisError(ChainError):
    """The genesis document is missing or invalid."""


class VerificationFailed(ChainError):
    """Replaying the block log gives a different result than what is stored."""


class UnstorableRecord(ChainError):
    """A record holds a number outside 64 bits or a value canonical JSON cannot encode."""


class LedgerUnavailable(ChainError):
    """The ledger could not be reached or gave an answer the client cannot use."""


def describe_validation_error(exc: _ValidationErrors, *, whole: str, skip: int = 0) -> str:
    """``field.path: what is wrong`` for the first problem pydantic found.

    ``whole`` names the document when the problem is not in one field; ``skip``
    drops leading location parts that mean nothing to the reader (FastAPI's "query").
    """
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"][skip:]) or whole
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"
