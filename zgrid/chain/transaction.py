"""Signed transactions: canonical JSON {chain_id, signer, nonce, call, args} + ed25519 signature.

The signature covers BLAKE2b-256 of the canonical JSON of the body; that digest,
in hex, is also the transaction's hash. ``chain_id`` stops a transaction from
one network being replayed on another, the nonce stops it being replayed on the
same one.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationError,
)

from zgrid.chain.errors import RejectCode, TransactionRejected, describe_validation_error
from zgrid.chain.units import U64_MAX
from zgrid.identity import CanonicalJSONError, Identity, blake2b256, canonical_dumps, verify

__all__ = ["MAX_TRANSACTION_BYTES", "SignedTransaction", "TransactionBody", "sign_transaction"]

MAX_TRANSACTION_BYTES = 128 * 1024
_HEX64 = r"^[0-9a-f]{64}$"


class TransactionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: StrictStr = Field(min_length=1, max_length=64)
    signer: StrictStr = Field(pattern=_HEX64, description="hex ed25519 public key")
    nonce: StrictInt = Field(ge=0, le=U64_MAX)
    call: StrictStr = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)

    @cached_property
    def digest(self) -> bytes:
        return blake2b256(canonical_dumps(self.model_dump(mode="json")))


class SignedTransaction(BaseModel):
    """A transaction as it travels: ``{"body": {...}, "signature": "<hex>"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: TransactionBody
    signature: StrictStr = Field(pattern=r"^[0-9a-f]{128}$")
    # Set once the signature held, so a transaction checked before it reaches the state
    # machine (a batch, in a worker process; the flag travels with it) is not checked twice.
    _signature_checked: bool = PrivateAttr(default=False)

    @cached_property
    def hash(self) -> str:
        return self.body.digest.hex()

    def check_signature(self) -> None:
        if self._signature_checked:
            return
        body = self.body
        if not verify(bytes.fromhex(body.signer), body.digest, bytes.fromhex(self.signature)):
            raise TransactionRejected(
                RejectCode.BAD_SIGNATURE, "signature does not match the signer and the body"
            )
        self._signature_checked = True

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def canonical(self) -> bytes:
        """The canonical JSON the block keeps, or a MALFORMED refusal if there is none."""
        try:
            return canonical_dumps(self.to_json())
        except CanonicalJSONError as exc:
            raise TransactionRejected(RejectCode.MALFORMED, f"transaction: {exc}") from None

    @classmethod
    def parse(cls, document: Any) -> SignedTransaction:
        """Read a transaction from its JSON form, or refuse it as malformed naming the field."""
        try:
            tx = cls.model_validate(document)
        except ValidationError as exc:
            raise TransactionRejected(
                RejectCode.MALFORMED, describe_validation_error(exc, whole="transaction")
            ) from None
        try:
            tx.body.digest  # noqa: B018 - what cannot be hashed cannot be signed or stored
        except CanonicalJSONError as exc:
            raise TransactionRejected(RejectCode.MALFORMED, f"body: {exc}") from None
        return tx


def sign_transaction(
    identity: Identity, *, chain_id: str, nonce: int, call: str, args: dict[str, Any]
) -> SignedTransaction:
    body = TransactionBody(
        chain_id=chain_id, signer=identity.address, nonce=nonce, call=call, args=args
    )
    return SignedTransaction(body=body, signature=identity.sign(body.digest).hex())
