"""Signing generated hub requests, and steering generated cases towards what the hub keeps.

``signer_for`` is a ``requests`` auth that signs the request as it goes on the wire (its
method, host, path, query and body bytes) the way the hub requires, wherever the generated
request carries the headers the hub's signature scheme needs: a case without them (the
checks that leave out a required header or the credentials) goes unsigned, and a header
generated malformed stays malformed. ``prepare`` points a case's twin at the registered
test twin and some of its bodies at real blocks and flists; it says whether the case is
now one the hub can take, which the OpenAPI cannot say of a random body.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from schemathesis import Case
from schemathesis.transport.serialization import Binary

from tests.flist.conftest import HubProcess, Twin
from zgrid.flist.block import block_id
from zgrid.flist.hub import BODY_HASH_HEADER, FLIST_SIGNATURE_HEADER, authorization, sign_flist
from zgrid.identity import blake2b256

__all__ = ["PushBodies", "prepare", "signer_for"]

_HASH = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{128}$")
_BLOCK_ID = re.compile(r"^[0-9a-fA-F]{64}$")
_FLIST_PATH = re.compile(r"^/flists/(\d+)/([^/]+)$")
_NAMES = ("held.fl", "app.fl")  # names cases are sometimes pointed at, so they meet again


@dataclass(frozen=True)
class PushBodies:
    held: bytes  # a .fl whose blocks the hub holds: a push of it is published
    lacking: bytes  # a .fl whose blocks the hub lacks: a push of it is refused with 409


def _body_bytes(request: requests.PreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        data = body.encode()
        request.body = data
        request.prepare_content_length(data)
        return data
    if isinstance(body, bytes):
        return body
    raise TypeError(f"cannot sign a streamed body ({type(body).__name__})")


class _Signer(requests.auth.AuthBase):
    def __init__(self, host: str, twin: Twin) -> None:
        self.host = host
        self.twin = twin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        headers = request.headers
        if "Authorization" not in headers:
            return request
        body = _body_bytes(request)
        digest = blake2b256(body)
        if _HASH.match(str(headers.get(BODY_HASH_HEADER, ""))):
            headers[BODY_HASH_HEADER] = digest.hex()
        url = urlsplit(str(request.url))
        path = unquote(url.path)
        signed = authorization(
            self.twin.identity,
            self.twin.twin_id,
            method=str(request.method),
            host=self.host,
            path=path,
            query=url.query,
            body_hash=digest,
            now=int(time.time()),
        )
        headers["Authorization"] = signed["Authorization"]
        flist = _FLIST_PATH.match(path)
        if flist and _SIGNATURE.match(str(headers.get(FLIST_SIGNATURE_HEADER, ""))):
            owner, name = int(flist[1]), flist[2]
            headers[FLIST_SIGNATURE_HEADER] = sign_flist(
                self.twin.identity, owner, name, digest.hex()
            )
        return request


def signer_for(hub: HubProcess, twin: Twin) -> requests.auth.AuthBase:
    return _Signer(hub.url.removeprefix("http://"), twin)


def _pick(seed: object, choices: int) -> int:
    """A choice that follows from the generated value, so a shrunk case keeps it."""
    return hashlib.blake2b(repr(seed).encode(), digest_size=2).digest()[0] % choices


def prepare(case: Case[Any], twin: Twin, bodies: PushBodies) -> bool:
    """Steer ``case`` towards what the hub keeps; False when its body is one the hub must
    refuse though the OpenAPI allows it (a random .fl, a block that is not its id)."""
    path = case.path_parameters or {}
    twin_id = path.get("twin_id")
    if str(twin_id).isdigit() and int(str(twin_id)) < 1 << 63 and _pick(twin_id, 4):
        path["twin_id"] = twin.twin_id
        name = path.get("name")
        if isinstance(name, str) and _pick(name, 3) == 0:
            path["name"] = _NAMES[_pick(name + "!", len(_NAMES))]
    operation = case.operation.label
    body = case.body.data if isinstance(case.body, Binary) else case.body
    if operation == "PUT /blocks/{hex_id}" and isinstance(body, bytes):
        hex_id = path.get("hex_id")
        if not isinstance(hex_id, str) or not _BLOCK_ID.match(hex_id):
            return True
        if _pick(hex_id, 4):
            path["hex_id"] = block_id(body).hex()
            return True
        return block_id(body).hex() == hex_id.lower()
    if operation == "PUT /flists/{twin_id}/{name}" and isinstance(body, bytes):
        choice = _pick(body, 3)
        if choice == 0:
            return False  # the generated bytes, refused by the hub's .fl checks
        case.body = Binary(bodies.held if choice == 1 else bodies.lacking)
    return True
