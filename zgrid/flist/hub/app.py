"""The hub's HTTP API: blocks in the layout of the read-only ``http://`` store, and flists
published by twins, pushed with signed requests (:mod:`zgrid.flist.hub.auth`).

Errors are the one body shape of every zgrid API, ``{"error": {"code", "message"}}``.
Writes are checked before their body is read, bounded in number (per twin and in total),
and their checks run in worker processes, so reads never wait behind pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.convertors import StringConvertor, register_url_convertor

from zgrid import __version__
from zgrid.flist.block import block_id
from zgrid.flist.errors import StoreError
from zgrid.flist.hub.auth import FLIST_SIGNATURE_HEADER, Authenticator, Credentials, verify_flist
from zgrid.flist.hub.ingest import UploadRefused, check_upload, missing_blocks
from zgrid.flist.hub.limits import (
    MAX_BLOCK_BYTES,
    MAX_FLIST_BYTES,
    MAX_MISSING_IDS,
    UploadLimits,
)
from zgrid.flist.hub.models import (
    BLOCK_BODY,
    BLOCK_ID_PATTERN,
    FLIST_BODY,
    FLIST_HASH_PATTERN,
    FLIST_NAME_PATTERN,
    MISSING_IDS_BODY,
    SECURITY_SCHEME,
    SIGNATURE_DESCRIPTION,
    DeletedFlist,
    FlistSummary,
    Health,
    OwnerCount,
    PublishedFlist,
    StoredBlock,
    binary_answer,
    signed_request,
)
from zgrid.flist.hub.nonces import NonceStore
from zgrid.flist.hub.storage import FlistRecord, FlistStorage, check_name
from zgrid.flist.stores import BlockStore
from zgrid.identity import blake2b256
from zgrid.web import (
    RequestRefused,
    document_errors,
    error_response,
    error_responses,
    install_error_handlers,
    iter_body,
    read_body,
)

__all__ = ["Hub", "UploadSlots", "create_app"]

log = logging.getLogger("zgrid.flist.hub")

_MAX_SMALL_BODY = 1 << 20
_HEX_ID = re.compile(r"^[0-9a-fA-F]{64}$")
_T = TypeVar("_T")
TwinId = Annotated[int, PathParam(ge=0, lt=1 << 63, description="the publishing twin")]


def _segment_except(word: str) -> str:
    """A path convertor for any segment but ``word``, so that ``/blocks/missing`` is only
    the route of its own (PUT or GET there is 405, not a block id refused) and
    ``/flists/by-hash/{hash}`` is never taken for a twin's flist."""
    name = "not_" + re.sub(r"[^a-z]", "_", word)

    class Segment(StringConvertor):
        regex = f"(?!{re.escape(word)}(?:/|$))[^/]+"

    register_url_convertor(name, Segment())
    return name


_NOT_MISSING = _segment_except("missing")
_NOT_BY_HASH = _segment_except("by-hash")
_BLOCK_PATH = f"/blocks/{{hex_id:{_NOT_MISSING}}}"
_FLIST_PATH = f"/flists/{{twin_id:{_NOT_BY_HASH}}}/{{name}}"
# Documented, not enforced by FastAPI: the routes refuse a bad value with their own error.
BlockId = Annotated[
    str,
    PathParam(
        description="the block's id, 64 hex digits", json_schema_extra={"pattern": BLOCK_ID_PATTERN}
    ),
]
Prefix = Annotated[
    str,
    PathParam(
        description="the id's first two hex digits",
        json_schema_extra={"pattern": "^[0-9a-fA-F]{2}$"},
    ),
]
FlistName = Annotated[
    str,
    PathParam(
        description="1 to 128 of A-Z a-z 0-9 . _ - (like base.fl)",
        json_schema_extra={"pattern": FLIST_NAME_PATTERN},
    ),
]
FlistHash = Annotated[
    str,
    PathParam(
        description="BLAKE2b-256 of the .fl, lower-case hex",
        json_schema_extra={"pattern": FLIST_HASH_PATTERN},
    ),
]
_BLOCK = binary_answer("the block's bytes, as stored")
_BLOCK_HEAD = binary_answer("the block's size in Content-Length, and no body")
_FLIST = binary_answer(
    "the .fl, byte for byte as pushed",
    {
        "X-Flist-Hash": "BLAKE2b-256 of the .fl, lower-case hex",
        "X-Flist-Owner": "the publishing twin",
        "X-Flist-Name": "the flist's name",
        FLIST_SIGNATURE_HEADER: "the publisher's signature of owner, name and hash (hex)",
    },
)


class UploadSlots:
    """Uploads in progress, at most ``per_twin`` for one twin (429 beyond) and ``total``
    for all (503 beyond): a sender cannot hold more of the hub than its share."""

    def __init__(self, what: str, *, per_twin: int, total: int) -> None:
        self.what = what
        self.per_twin = per_twin
        self.total = total
        self._by_twin: dict[int, int] = {}
        self._count = 0

    @contextlib.contextmanager
    def take(self, twin_id: int) -> Iterator[None]:
        if self._count >= self.total:
            raise RequestRefused(
                503,
                "busy",
                f"the hub takes {self.total} {self.what} uploads at once; try again shortly",
                headers={"Retry-After": "1"},
            )
        mine = self._by_twin.get(twin_id, 0)
        if mine >= self.per_twin:
            raise RequestRefused(
                429,
                "too_many_uploads",
                f"twin {twin_id} has {mine} {self.what} uploads in progress; at most "
                f"{self.per_twin} at once",
                headers={"Retry-After": "1"},
            )
        self._by_twin[twin_id] = mine + 1
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            left = self._by_twin[twin_id] - 1
            if left:
                self._by_twin[twin_id] = left
            else:
                del self._by_twin[twin_id]


@dataclass(slots=True, kw_only=True)
class Hub:
    """What the API serves from: the block store, the flists, who may write, and the
    workers that take a push's blocking work off the event loop.

    ``checks`` runs :func:`check_upload` (a process pool in a served hub); ``writes`` the
    file and index work of pushes, so that the default executor stays free for reads.
    """

    store: BlockStore
    storage: FlistStorage
    auth: Authenticator
    nonces: NonceStore
    public_url: str
    limits: UploadLimits = field(default_factory=UploadLimits)
    checks: Executor | None = None
    writes: Executor | None = None
    flist_uploads: UploadSlots = field(init=False)
    block_uploads: UploadSlots = field(init=False)
    check_slots: asyncio.Semaphore = field(init=False)
    lookup_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        limits = self.limits
        self.flist_uploads = UploadSlots(
            "flist", per_twin=limits.flists_per_twin, total=limits.flists_total
        )
        self.block_uploads = UploadSlots(
            "block", per_twin=limits.blocks_per_twin, total=limits.blocks_total
        )
        self.check_slots = asyncio.Semaphore(max(1, limits.checks))
        self.lookup_slots = asyncio.Semaphore(4)  # store lookups of pushes, all together

    @property
    def blocks_url(self) -> str:
        return f"{self.public_url}/blocks"

    async def in_writes(self, work: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.writes, functools.partial(work, *args, **kwargs))

    async def check(self, upload: Path) -> list[bytes]:
        scratch = upload.with_name(upload.name + ".check")
        async with self.check_slots:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    self.checks,
                    functools.partial(check_upload, upload, scratch, blocks_url=self.blocks_url),
                )
            except UploadRefused as exc:
                raise RequestRefused(400, "bad_flist", str(exc)) from exc

    async def close(self) -> None:
        await self.auth.close()
        await self.store.close()
        self.storage.close()
        self.nonces.close()
        for executor in (self.checks, self.writes):
            if executor is not None:
                await asyncio.to_thread(executor.shutdown, cancel_futures=True)


def _parse_id(text: str) -> bytes:
    if not _HEX_ID.match(text):
        raise RequestRefused(400, "bad_block_id", f"bad block id {text!r}: 64 hex digits")
    return bytes.fromhex(text)


def _mismatch(declared: bytes) -> RequestRefused:
    return RequestRefused(
        400,
        "body_mismatch",
        f"the body does not match its declared BLAKE2b-256 {declared.hex()}",
    )


async def _file_chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            yield chunk
    finally:
        handle.close()


def _send_flist(path: Path, record: FlistRecord) -> StreamingResponse:
    try:
        handle = path.open("rb")  # opened now: a delete after this still serves whole bytes
    except FileNotFoundError as exc:
        raise RequestRefused(404, "not_found", f"flist {record.hash} is gone") from exc
    size = os.fstat(handle.fileno()).st_size
    return StreamingResponse(
        _file_chunks(handle),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(size),
            "X-Flist-Hash": record.hash,
            "X-Flist-Owner": str(record.owner),
            "X-Flist-Name": record.name,
            FLIST_SIGNATURE_HEADER: record.signature,
        },
    )


async def _signed(hub: Hub, request: Request) -> Credentials:
    return await hub.auth.check(
        method=request.method,
        host=request.headers.get("host", ""),
        path=request.url.path,
        query=request.url.query,
        headers=request.headers,
    )


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(
        title="zgrid flist hub",
        version=__version__,
        description="Content-addressed flist blocks, and flists published by twins.",
    )
    install_error_handlers(app, log=log)

    @app.exception_handler(StoreError)
    async def _store_failed(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("the block store failed: %s", exc)
        return error_response(503, "store_unavailable", f"the hub's block store failed: {exc}")

    @app.get("/health", tags=["hub"], operation_id="health")
    async def health() -> Health:
        return Health(status="ok", version=__version__, blocks=hub.blocks_url)

    _block_routes(app, hub)
    _flist_routes(app, hub)
    _flist_writes(app, hub)
    document_errors(app)
    _document_signatures(app)
    return app


def _document_signatures(app: FastAPI) -> None:
    """Name the signed-request scheme the writes' ``security`` refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": SIGNATURE_DESCRIPTION,
        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _block_routes(app: FastAPI, hub: Hub) -> None:
    async def send_block(text: str, *, head: bool) -> Response:
        id_ = _parse_id(text)
        data = await hub.store.get(id_)
        if data is None:
            raise RequestRefused(404, "not_found", f"no block {text}")
        if head:
            return Response(
                media_type="application/octet-stream", headers={"Content-Length": str(len(data))}
            )
        return Response(content=data, media_type="application/octet-stream")

    def in_dir(prefix: str, hex_id: str) -> str:
        if prefix.lower() != hex_id[:2].lower():
            raise RequestRefused(404, "not_found", f"no block {prefix}/{hex_id}")
        return hex_id

    get: dict[int | str, dict[str, Any]] = {200: _BLOCK, **error_responses(503)}
    head: dict[int | str, dict[str, Any]] = {200: _BLOCK_HEAD, **error_responses(503)}

    @app.get(
        "/blocks/{prefix}/{hex_id}",
        tags=["blocks"],
        operation_id="get_block_in_dir",
        response_class=Response,
        responses=get,
    )
    async def block_in_dir(prefix: Prefix, hex_id: BlockId) -> Response:
        """A block, in the layout of a directory store (``<id[0:2]>/<id>``)."""
        return await send_block(in_dir(prefix, hex_id), head=False)

    @app.head(
        "/blocks/{prefix}/{hex_id}",
        tags=["blocks"],
        operation_id="head_block_in_dir",
        response_class=Response,
        responses=head,
    )
    async def block_in_dir_head(prefix: Prefix, hex_id: BlockId) -> Response:
        """Whether the hub holds a block, and its size."""
        return await send_block(in_dir(prefix, hex_id), head=True)

    @app.get(
        _BLOCK_PATH,
        tags=["blocks"],
        operation_id="get_block",
        response_class=Response,
        responses=get,
    )
    async def block(hex_id: BlockId) -> Response:
        """A block's bytes."""
        return await send_block(hex_id, head=False)

    @app.head(
        _BLOCK_PATH,
        tags=["blocks"],
        operation_id="head_block",
        response_class=Response,
        responses=head,
    )
    async def block_head(hex_id: BlockId) -> Response:
        """Whether the hub holds a block, and its size."""
        return await send_block(hex_id, head=True)

    @app.post(
        "/blocks/missing",
        tags=["blocks"],
        operation_id="missing_blocks",
        responses=error_responses(408, 413, 503),
        openapi_extra={"requestBody": MISSING_IDS_BODY},
    )
    async def missing(request: Request) -> list[str]:
        """Which of the given block ids the hub does not hold (a JSON list of hex ids)."""
        body = await read_body(
            request, limit=_MAX_SMALL_BODY, idle_timeout=hub.limits.body_idle_timeout
        )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise RequestRefused(400, "bad_request", f"the body is not JSON: {exc}") from exc
        if not isinstance(document, list) or not all(isinstance(i, str) for i in document):
            raise RequestRefused(
                400, "bad_request", "the body must be a JSON list of hex block ids"
            )
        if len(document) > MAX_MISSING_IDS:
            raise RequestRefused(400, "bad_request", f"at most {MAX_MISSING_IDS} ids per request")
        ids = [_parse_id(text) for text in document]
        lacking = await missing_blocks(hub.store, ids, slots=hub.lookup_slots)
        return [id_.hex() for id_ in lacking]

    @app.put(
        _BLOCK_PATH,
        tags=["blocks"],
        operation_id="put_block",
        responses=error_responses(401, 408, 413, 429, 503),
        openapi_extra={**signed_request(), "requestBody": BLOCK_BODY},
    )
    async def put_block(request: Request, hex_id: BlockId) -> StoredBlock:
        """Store one block; signed by any twin; the body must hash to the id."""
        id_ = _parse_id(hex_id)
        credentials = await _signed(hub, request)
        with hub.block_uploads.take(credentials.twin_id):
            body = await read_body(
                request, limit=MAX_BLOCK_BYTES, idle_timeout=hub.limits.body_idle_timeout
            )
        if blake2b256(body) != credentials.body_hash:
            raise _mismatch(credentials.body_hash)
        if block_id(body) != id_:
            raise RequestRefused(
                400, "bad_block", f"the body is not block {id_.hex()}: its BLAKE2b-256 differs"
            )
        await hub.store.set(id_, body)
        return StoredBlock(id=id_.hex(), size=len(body))


async def _spool(hub: Hub, request: Request, path: Path, declared: bytes) -> None:
    """Write the body to ``path`` as it arrives; refuse it unless it hashes to ``declared``."""
    digest = hashlib.blake2b(digest_size=32)
    handle = await hub.in_writes(path.open, "wb")
    try:
        chunks = iter_body(
            request, limit=MAX_FLIST_BYTES, idle_timeout=hub.limits.body_idle_timeout
        )
        async for chunk in chunks:
            digest.update(chunk)
            await hub.in_writes(handle.write, chunk)
    finally:
        handle.close()
    if digest.digest() != declared:
        raise _mismatch(declared)


def _describe(hub: Hub, record: FlistRecord) -> PublishedFlist:
    return PublishedFlist(
        owner=record.owner,
        name=record.name,
        hash=record.hash,
        size=record.size,
        url=f"{hub.public_url}/flists/{record.owner}/{record.name}",
    )


def _flist_routes(app: FastAPI, hub: Hub) -> None:
    @app.get("/flists", tags=["flists"], operation_id="list_owners")
    async def owners() -> list[OwnerCount]:
        """The twins that publish flists here, and how many each."""
        rows = await asyncio.to_thread(hub.storage.owners)
        return [OwnerCount(owner=owner, count=count) for owner, count in rows]

    @app.get(
        "/flists/by-hash/{flist_hash}",
        tags=["flists"],
        operation_id="get_flist_by_hash",
        response_class=Response,
        responses={200: _FLIST},
    )
    async def by_hash(flist_hash: FlistHash) -> StreamingResponse:
        """A published .fl by its content hash."""
        record = await asyncio.to_thread(hub.storage.by_hash, flist_hash)
        if record is None:
            raise RequestRefused(404, "not_found", f"no flist has the hash {flist_hash}")
        return _send_flist(hub.storage.path_of(record.hash), record)

    @app.get("/flists/{twin_id}", tags=["flists"], operation_id="list_flists")
    async def flists_of(twin_id: TwinId) -> list[FlistSummary]:
        """The flists a twin publishes here (none: an empty list)."""
        records = await asyncio.to_thread(hub.storage.flists_of, twin_id)
        return [
            FlistSummary(name=r.name, hash=r.hash, size=r.size, updated=r.updated) for r in records
        ]

    @app.get(
        _FLIST_PATH,
        tags=["flists"],
        operation_id="get_flist",
        response_class=Response,
        responses={200: _FLIST},
    )
    async def flist(twin_id: TwinId, name: FlistName) -> StreamingResponse:
        """A published .fl, with its publisher's signature."""
        record = await asyncio.to_thread(hub.storage.get, twin_id, name)
        if record is None:
            raise RequestRefused(404, "not_found", f"twin {twin_id} has no flist {name!r}")
        return _send_flist(hub.storage.path_of(record.hash), record)


def _flist_writes(app: FastAPI, hub: Hub) -> None:
    async def owner_signed(request: Request, twin_id: int, name: str) -> Credentials:
        credentials = await _signed(hub, request)
        if credentials.twin_id != twin_id:
            raise RequestRefused(
                403,
                "forbidden",
                f"twin {credentials.twin_id} cannot change flists of twin {twin_id}",
            )
        check_name(name)
        return credentials

    @app.put(
        _FLIST_PATH,
        tags=["flists"],
        operation_id="push_flist",
        responses=error_responses(401, 403, 408, 409, 413, 429, 503),
        openapi_extra={**signed_request(flist_signature=True), "requestBody": FLIST_BODY},
    )
    async def push(request: Request, twin_id: TwinId, name: FlistName) -> PublishedFlist:
        """Publish a .fl as ``twin_id``/``name``; every block it names must be here first,
        and its blocks must be routed to this hub. ``X-Flist-Signature`` is the twin's
        signature of the owner, the name and the content hash, served to every puller."""
        credentials = await owner_signed(request, twin_id, name)
        flist_hash = credentials.body_hash.hex()
        signature = request.headers.get(FLIST_SIGNATURE_HEADER.lower(), "")
        key = await hub.auth.public_key(twin_id)
        if not verify_flist(key, twin_id, name, flist_hash, signature):
            raise RequestRefused(
                400,
                "bad_flist_signature",
                f"{FLIST_SIGNATURE_HEADER} must be twin {twin_id}'s signature of "
                f"{twin_id}/{name} with content hash {flist_hash}",
            )
        with hub.flist_uploads.take(twin_id):
            upload = hub.storage.temp_path()
            try:
                await _spool(hub, request, upload, credentials.body_hash)
                ids = await hub.check(upload)
                lacking = await missing_blocks(hub.store, ids, slots=hub.lookup_slots)
                if lacking:
                    raise RequestRefused(
                        409,
                        "blocks_missing",
                        f"{len(lacking)} of the {len(ids)} blocks of this flist are not on "
                        f"the hub (first: {lacking[0].hex()}); upload them first",
                    )
                record = await hub.in_writes(
                    hub.storage.store,
                    twin_id,
                    name,
                    upload,
                    flist_hash=flist_hash,
                    signature=signature.lower(),
                )
            finally:
                with contextlib.suppress(OSError):
                    upload.unlink()
        return _describe(hub, record)

    @app.delete(
        _FLIST_PATH,
        tags=["flists"],
        operation_id="delete_flist",
        responses=error_responses(401, 403, 408, 413, 503),
        openapi_extra=signed_request(),
    )
    async def delete(request: Request, twin_id: TwinId, name: FlistName) -> DeletedFlist:
        """Withdraw a published flist (its blocks stay); signed by its owner, no body."""
        credentials = await owner_signed(request, twin_id, name)
        body = await read_body(
            request, limit=_MAX_SMALL_BODY, idle_timeout=hub.limits.body_idle_timeout
        )
        if blake2b256(body) != credentials.body_hash:
            raise _mismatch(credentials.body_hash)
        if not await hub.in_writes(hub.storage.delete, twin_id, name):
            raise RequestRefused(404, "not_found", f"twin {twin_id} has no flist {name!r}")
        return DeletedFlist(owner=twin_id, name=name, deleted=True)
