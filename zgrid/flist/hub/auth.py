"""Signed hub requests and signed flists.

A write carries two headers::

    Authorization: Zgrid twin=<id>,time=<unix s>,nonce=<32 hex>,signature=<128 hex>
    X-Content-Blake2b: <64 hex: BLAKE2b-256 of the body (of no bytes when there is none)>

The signature is ed25519, by the twin's key on the ledger, over BLAKE2b-256 of
``"zgrid-hub-request/2\\n{METHOD}\\n{host}\\n{path}\\n{query}\\n{time}\\n{nonce}\\n{body hash}"``
(``host`` as in the Host header). It is checked before the body is read, the body is
checked against the declared hash as it arrives, and each nonce is accepted once
(remembered for as long as its time is within the allowed clock skew).

A pushed flist also carries ``X-Flist-Signature``: the twin's signature over BLAKE2b-256
of ``"zgrid-flist/1\\n{twin}\\n{name}\\n{content hash}"``. The hub keeps it and serves it,
so a puller checks the publisher, not the hub.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from zgrid.chain import ChainClient, LedgerUnavailable, NotFound
from zgrid.flist.hub.nonces import NonceStore
from zgrid.identity import (
    Identity,
    InvalidKeyError,
    blake2b256,
    public_key_from_address,
    verify,
)
from zgrid.web import RequestRefused

__all__ = [
    "BODY_HASH_HEADER",
    "FLIST_SIGNATURE_HEADER",
    "MAX_CLOCK_SKEW",
    "SCHEME",
    "Authenticator",
    "Credentials",
    "authorization",
    "flist_digest",
    "parse_authorization",
    "sign_flist",
    "signed_digest",
    "verify_flist",
]

SCHEME = "Zgrid"
BODY_HASH_HEADER = "X-Content-Blake2b"
FLIST_SIGNATURE_HEADER = "X-Flist-Signature"
MAX_CLOCK_SKEW = 300  # seconds between the signer's clock and the hub's
_FIELDS = re.compile(
    r"^\s*twin=(\d{1,19})\s*,\s*time=(\d{1,19})\s*,\s*nonce=([0-9a-f]{32})\s*,"
    r"\s*signature=([0-9a-fA-F]{128})\s*$"
)
_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-fA-F]{128}$")
_FORMAT = f"{SCHEME} twin=<id>,time=<unix seconds>,nonce=<32 hex>,signature=<hex>"


def signed_digest(
    method: str,
    *,
    host: str,
    path: str,
    query: str,
    timestamp: int,
    nonce: str,
    body_hash: bytes,
) -> bytes:
    """What a request's signature signs: where it goes, when, once, and with which body."""
    text = "\n".join(
        (
            "zgrid-hub-request/2",
            method.upper(),
            host.lower(),
            path,
            query,
            str(timestamp),
            nonce,
            body_hash.hex(),
        )
    )
    return blake2b256(text.encode())


def authorization(
    identity: Identity,
    twin_id: int,
    *,
    method: str,
    host: str,
    path: str,
    query: str = "",
    body_hash: bytes,
    now: int,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that sign this request as ``twin_id`` (a fresh nonce unless given)."""
    nonce = nonce or secrets.token_hex(16)
    digest = signed_digest(
        method, host=host, path=path, query=query, timestamp=now, nonce=nonce, body_hash=body_hash
    )
    signature = identity.sign(digest).hex()
    return {
        "Authorization": f"{SCHEME} twin={twin_id},time={now},nonce={nonce},signature={signature}",
        BODY_HASH_HEADER: body_hash.hex(),
    }


def flist_digest(owner: int, name: str, flist_hash: str) -> bytes:
    return blake2b256(f"zgrid-flist/1\n{owner}\n{name}\n{flist_hash}".encode())


def sign_flist(identity: Identity, owner: int, name: str, flist_hash: str) -> str:
    """The publisher's signature of ``owner``/``name`` having exactly this content hash."""
    return identity.sign(flist_digest(owner, name, flist_hash)).hex()


def verify_flist(key: bytes, owner: int, name: str, flist_hash: str, signature: str) -> bool:
    if not _HEX_SIGNATURE.match(signature):
        return False
    return verify(key, flist_digest(owner, name, flist_hash), bytes.fromhex(signature))


def _unsigned(message: str) -> RequestRefused:
    return RequestRefused(401, "unauthorized", message, headers={"WWW-Authenticate": SCHEME})


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed Authorization header and declared body hash; nothing in it is checked yet."""

    twin_id: int
    timestamp: int
    nonce: str
    signature: bytes
    body_hash: bytes


def parse_authorization(headers: Mapping[str, str]) -> Credentials:
    header = headers.get("authorization")
    if not header:
        raise _unsigned(f"this request must be signed: Authorization: {_FORMAT}")
    scheme, _, rest = header.strip().partition(" ")
    match = _FIELDS.match(rest) if scheme == SCHEME else None
    if match is None:
        raise _unsigned(f"malformed Authorization header; expected {_FORMAT}")
    declared = headers.get(BODY_HASH_HEADER.lower(), "")
    if not _HEX_HASH.match(declared):
        raise _unsigned(
            f"a signed request declares its body's BLAKE2b-256 in {BODY_HASH_HEADER} "
            "(64 lower-case hex digits)"
        )
    return Credentials(
        twin_id=int(match[1]),
        timestamp=int(match[2]),
        nonce=match[3],
        signature=bytes.fromhex(match[4]),
        body_hash=bytes.fromhex(declared),
    )


class Authenticator:
    """Checks signed requests against twins' keys on the ledger (kept a while), each nonce
    once. ``hosts``: the Host values this hub answers to (empty: any)."""

    def __init__(
        self,
        ledger: ChainClient,
        nonces: NonceStore,
        *,
        hosts: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
        max_skew: int = MAX_CLOCK_SKEW,
        keep_keys_for: float = 600.0,
        executor: Executor | None = None,
    ) -> None:
        self._ledger = ledger
        self._nonces = nonces
        self._hosts = frozenset(host.lower() for host in hosts)
        self._clock = clock
        self._max_skew = max_skew
        self._keep_keys_for = keep_keys_for
        self._executor = executor
        self._keys: dict[int, tuple[bytes, float]] = {}

    async def public_key(self, twin_id: int) -> bytes:
        now = time.monotonic()
        cached = self._keys.get(twin_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            twin = await self._ledger.twin(twin_id)
        except NotFound as exc:
            raise _unsigned(f"twin {twin_id} is not on the ledger") from exc
        except LedgerUnavailable as exc:
            raise RequestRefused(
                503, "ledger_unavailable", f"cannot check the signature now: {exc}"
            ) from exc
        try:
            key = public_key_from_address(str(twin.get("account", "")))
        except InvalidKeyError as exc:
            raise _unsigned(f"twin {twin_id} has no usable key on the ledger") from exc
        self._keys[twin_id] = (key, now + self._keep_keys_for)
        return key

    async def check(
        self, *, method: str, host: str, path: str, query: str, headers: Mapping[str, str]
    ) -> Credentials:
        """The request's credentials once its signature (over the declared body hash) holds
        and its nonce is new; the body itself is for the caller to check as it reads it."""
        credentials = parse_authorization(headers)
        if self._hosts and host.lower() not in self._hosts:
            raise _unsigned(
                f"this hub answers to {', '.join(sorted(self._hosts))}, not {host!r}; sign "
                "requests for the hub's own address"
            )
        skew = credentials.timestamp - self._clock()
        if abs(skew) > self._max_skew:
            raise _unsigned(
                f"the request was signed at {credentials.timestamp}, {abs(skew):.0f} s "
                f"{'ahead of' if skew > 0 else 'behind'} the hub's clock (at most "
                f"{self._max_skew} s allowed); check the clock and sign again"
            )
        key = await self.public_key(credentials.twin_id)
        digest = signed_digest(
            method,
            host=host,
            path=path,
            query=query,
            timestamp=credentials.timestamp,
            nonce=credentials.nonce,
            body_hash=credentials.body_hash,
        )
        if not verify(key, digest, credentials.signature):
            raise _unsigned(
                f"bad signature: it is not twin {credentials.twin_id}'s signature of "
                f"{method.upper()} {host}{path}{'?' + query if query else ''} at time "
                f"{credentials.timestamp} with this nonce and body hash"
            )
        expires = credentials.timestamp + self._max_skew + 1
        fresh = await asyncio.get_running_loop().run_in_executor(
            self._executor,
            self._nonces.remember,
            credentials.twin_id,
            credentials.nonce,
            expires,
        )
        if not fresh:
            raise _unsigned(
                f"nonce {credentials.nonce} of twin {credentials.twin_id} was used already: "
                "a request is accepted once; sign it again"
            )
        return credentials

    async def close(self) -> None:
        await self._ledger.close()
