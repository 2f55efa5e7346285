"""Join tokens: a farmer's off-ledger permission for one node to register into their farm.

The farmer signs, with their twin's key, ``{chain_id, farm_id, node, expires, id}``:
``node`` is the account address of the node allowed to use it, or "" for any node;
``expires`` is ledger time (unix seconds of block time); ``id`` is random. The ledger
admits ``nodes.register`` with a token only if the farm's twin signed it, it is for
this chain and farm, the node matches, it has not expired, and its id was not used
before in that farm (each token registers one node). A token travels as one line of
text (:meth:`JoinToken.encode`), so a farmer can hand it to a node by any channel.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zgrid.chain.units import U64, Id
from zgrid.identity import Identity, blake2b256, canonical_dumps, verify

__all__ = ["MAX_ENCODED_TOKEN", "JoinToken", "issue_join_token", "parse_join_token"]

# Signed together with the fields, so a join token signature means nothing else.
_PURPOSE = "zgrid join token"
MAX_ENCODED_TOKEN = 1024


class JoinToken(BaseModel):
    """A signed permission for a node to join ``farm_id`` until ``expires`` (ledger time)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    chain_id: str = Field(min_length=1, max_length=64)
    farm_id: Id
    node: str = Field(
        default="", pattern=r"^([0-9a-f]{64})?$", description="the node's account, or '' for any"
    )
    expires: U64 = Field(description="ledger time (unix seconds) after which it is refused")
    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="random; each id registers once")
    signature: str = Field(pattern=r"^[0-9a-f]{128}$", description="the farmer twin's ed25519")

    def digest(self) -> bytes:
        """What the farmer signs: BLAKE2b-256 of the canonical JSON of every field but the signature."""
        body = self.model_dump(exclude={"signature"})
        return blake2b256(canonical_dumps({"purpose": _PURPOSE, **body}))

    def signed_by(self, address: str) -> bool:
        return verify(bytes.fromhex(address), self.digest(), bytes.fromhex(self.signature))

    def encode(self) -> str:
        """The token as one line: URL-safe base64 of its canonical JSON, without padding."""
        raw = canonical_dumps(self.model_dump())
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> JoinToken:
        """Read a token printed by :meth:`encode`; ValueError says what is wrong with it."""
        return cls.model_validate(_document(text))


def _document(text: str) -> Any:
    text = text.strip()
    if len(text) > MAX_ENCODED_TOKEN:
        raise ValueError(f"is {len(text)} characters, a join token has at most {MAX_ENCODED_TOKEN}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "is not a join token (ask the farmer for one made with `zgrid farm join-token`)"
        ) from exc


def parse_join_token(value: Any) -> Any:
    """The token's fields from its encoded text (what a node is handed), or the fields as they are."""
    return _document(value) if isinstance(value, str) else value


def issue_join_token(
    farmer: Identity,
    *,
    chain_id: str,
    farm_id: int,
    expires: int,
    node: str = "",
    token_id: str | None = None,
) -> JoinToken:
    """A join token signed by ``farmer`` (the key of the farm's twin)."""
    unsigned = JoinToken(
        chain_id=chain_id,
        farm_id=farm_id,
        node=node,
        expires=expires,
        id=token_id or secrets.token_hex(16),
        signature="0" * 128,
    )
    return unsigned.model_copy(update={"signature": farmer.sign(unsigned.digest()).hex()})
