"""Signed hub requests: the ``Authorization: Zgrid twin=<id>,time=<unix s>,signature=<hex>``
header a client makes, and the check the hub does against the twin's key on the ledger.

The signature is ed25519 over BLAKE2b-256 of ``"{METHOD}\\n{path}\\n{time}\\n{body hash hex}"``,
where the body hash is BLAKE2b-256 of the request body (of no bytes when there is none).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from zgrid.chain import ChainClient, LedgerUnavailable, NotFound
from zgrid.flist.hub.errors import HubRefused
from zgrid.identity import (
    Identity,
    InvalidKeyError,
    blake2b256,
    public_key_from_address,
    verify,
)

__all__ = [
    "MAX_CLOCK_SKEW",
    "SCHEME",
    "Authenticator",
    "Credentials",
    "authorization",
    "parse_authorization",
    "signed_digest",
]

SCHEME = "Zgrid"
MAX_CLOCK_SKEW = 300  # seconds between the signer's clock and the hub's
_FIELDS = re.compile(
    r"^\s*twin=(\d{1,19})\s*,\s*time=(\d{1,19})\s*,\s*signature=([0-9a-fA-F]{128})\s*$"
)
_FORMAT = f"{SCHEME} twin=<id>,time=<unix seconds>,signature=<hex>"


def signed_digest(method: str, path: str, timestamp: int, body_hash: bytes) -> bytes:
    """What a request's signature signs: it binds the method, the path, the time and the body."""
    return blake2b256(f"{method.upper()}\n{path}\n{timestamp}\n{body_hash.hex()}".encode())


def authorization(
    identity: Identity, twin_id: int, method: str, path: str, body_hash: bytes, *, now: int
) -> str:
    """The Authorization header value that signs this request as ``twin_id``."""
    signature = identity.sign(signed_digest(method, path, now, body_hash))
    return f"{SCHEME} twin={twin_id},time={now},signature={signature.hex()}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed Authorization header; nothing in it is checked yet."""

    twin_id: int
    timestamp: int
    signature: bytes


def parse_authorization(header: str | None) -> Credentials:
    if not header:
        raise HubRefused(401, f"this request must be signed: Authorization: {_FORMAT}")
    scheme, _, rest = header.strip().partition(" ")
    match = _FIELDS.match(rest) if scheme == SCHEME else None
    if match is None:
        raise HubRefused(401, f"malformed Authorization header; expected {_FORMAT}")
    return Credentials(
        twin_id=int(match[1]), timestamp=int(match[2]), signature=bytes.fromhex(match[3])
    )


class Authenticator:
    """Checks signed requests; twins' public keys come from the ledger and are kept a while."""

    def __init__(
        self,
        ledger: ChainClient,
        *,
        clock: Callable[[], float] = time.time,
        max_skew: int = MAX_CLOCK_SKEW,
        keep_keys_for: float = 600.0,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._max_skew = max_skew
        self._keep_keys_for = keep_keys_for
        self._keys: dict[int, tuple[bytes, float]] = {}

    async def _public_key(self, twin_id: int) -> bytes:
        now = time.monotonic()
        cached = self._keys.get(twin_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            twin = await self._ledger.twin(twin_id)
        except NotFound as exc:
            raise HubRefused(401, f"twin {twin_id} is not on the ledger") from exc
        except LedgerUnavailable as exc:
            raise HubRefused(503, f"cannot check the signature now: {exc}") from exc
        try:
            key = public_key_from_address(str(twin.get("account", "")))
        except InvalidKeyError as exc:
            raise HubRefused(401, f"twin {twin_id} has no usable key on the ledger") from exc
        self._keys[twin_id] = (key, now + self._keep_keys_for)
        return key

    async def credentials(self, header: str | None) -> Credentials:
        """Parse the header and check what can be checked before the body is read."""
        credentials = parse_authorization(header)
        skew = credentials.timestamp - self._clock()
        if abs(skew) > self._max_skew:
            raise HubRefused(
                401,
                f"the request was signed at {credentials.timestamp}, {abs(skew):.0f} s "
                f"{'ahead of' if skew > 0 else 'behind'} the hub's clock (at most "
                f"{self._max_skew} s allowed); check the clock and sign again",
            )
        await self._public_key(credentials.twin_id)
        return credentials

    async def verify(
        self, credentials: Credentials, method: str, path: str, body_hash: bytes
    ) -> int:
        """The signing twin's id, once the signature matches the request and its body."""
        key = await self._public_key(credentials.twin_id)
        digest = signed_digest(method, path, credentials.timestamp, body_hash)
        if not verify(key, digest, credentials.signature):
            raise HubRefused(
                401,
                f"bad signature: it is not twin {credentials.twin_id}'s signature of "
                f"{method.upper()} {path} with this body at time {credentials.timestamp}",
            )
        return credentials.twin_id

    async def close(self) -> None:
        await self._ledger.close()
