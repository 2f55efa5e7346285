"""The hub's HTTP API: blocks in the layout of the read-only ``http://`` store, and flists
published by twins, pushed with signed requests.

Errors are ``{"error": "<one line>"}`` with the status the refusal calls for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from zgrid import __version__
from zgrid.flist.block import block_id
from zgrid.flist.errors import FlistError, StoreError
from zgrid.flist.hub.auth import SCHEME, Authenticator, Credentials
from zgrid.flist.hub.errors import HubRefused
from zgrid.flist.hub.ingest import missing_blocks, prepare_flist
from zgrid.flist.hub.limits import MAX_BLOCK_BYTES, MAX_FLIST_BYTES, MAX_MISSING_IDS
from zgrid.flist.hub.storage import FlistStorage, check_name
from zgrid.flist.stores import BlockStore
from zgrid.identity import blake2b256

__all__ = ["Hub", "create_app"]

_MAX_SMALL_BODY = 1 << 20
_HEX_ID = re.compile(r"^[0-9a-fA-F]{64}$")
_T = TypeVar("_T")
TwinId = Annotated[int, PathParam(ge=0, lt=1 << 63, description="the publishing twin")]


@dataclass(slots=True)
class Hub:
    """What the API serves from: the block store, the flists, and who may write."""

    store: BlockStore
    storage: FlistStorage
    auth: Authenticator
    public_url: str

    @property
    def blocks_url(self) -> str:
        return f"{self.public_url}/blocks"

    async def close(self) -> None:
        await self.auth.close()
        await self.store.close()
        self.storage.close()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message}, headers=headers)


def _parse_id(text: str) -> bytes:
    if not _HEX_ID.match(text):
        raise HubRefused(400, f"bad block id {text!r}: 64 hex digits")
    return bytes.fromhex(text)


def _too_large(limit: int) -> HubRefused:
    return HubRefused(413, f"the body is larger than {limit} bytes")


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused once it passes ``limit``: a huge body is never held."""
    _check_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _spool_body(request: Request, limit: int, path: Path) -> bytes:
    """Write the body to ``path``; return its BLAKE2b-256."""
    _check_length(request, limit)
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            digest.update(chunk)
            await asyncio.to_thread(handle.write, chunk)
    finally:
        handle.close()
    return digest.digest()


async def _before_body(request: Request, check: Awaitable[_T], limit: int) -> _T:
    """Run a check that needs no body; on refusal read the body away first, so that the
    client, still sending, gets the answer instead of a broken connection."""
    try:
        return await check
    except HubRefused:
        with contextlib.suppress(Exception):
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    break
        raise


async def _file_chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            yield chunk
    finally:
        handle.close()


def _send_flist(path: Path, flist_hash: str) -> StreamingResponse:
    try:
        handle = path.open("rb")  # opened now: a delete after this still serves whole bytes
    except FileNotFoundError as exc:
        raise HubRefused(404, f"flist {flist_hash} is gone") from exc
    size = os.fstat(handle.fileno()).st_size
    return StreamingResponse(
        _file_chunks(handle),
        media_type="application/octet-stream",
        headers={"X-Flist-Hash": flist_hash, "Content-Length": str(size)},
    )


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(
        title="zgrid flist hub",
        version=__version__,
        description="Content-addressed flist blocks, and flists published by twins.",
    )

    @app.exception_handler(HubRefused)
    async def _refused(_: Request, exc: HubRefused) -> JSONResponse:
        headers = {"WWW-Authenticate": SCHEME} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(StoreError)
    async def _store_failed(_: Request, exc: StoreError) -> JSONResponse:
        return _error(503, f"the hub's block store failed: {exc}")

    @app.exception_handler(FlistError)
    async def _flist_failed(_: Request, exc: FlistError) -> JSONResponse:
        return _error(500, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        ]
        return _error(400, "; ".join(problems) or "bad request")

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _crashed(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.get("/health", tags=["hub"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "blocks": hub.blocks_url}

    _block_routes(app, hub)
    _flist_routes(app, hub)
    return app


def _block_routes(app: FastAPI, hub: Hub) -> None:
    async def send_block(request: Request, text: str) -> Response:
        id_ = _parse_id(text)
        data = await hub.store.get(id_)
        if data is None:
            raise HubRefused(404, f"no block {text}")
        if request.method == "HEAD":
            return Response(
                media_type="application/octet-stream", headers={"Content-Length": str(len(data))}
            )
        return Response(content=data, media_type="application/octet-stream")

    @app.api_route("/blocks/{prefix}/{hex_id}", methods=["GET", "HEAD"], tags=["blocks"])
    async def block_in_dir(request: Request, prefix: str, hex_id: str) -> Response:
        if prefix.lower() != hex_id[:2].lower():
            raise HubRefused(404, f"no block {prefix}/{hex_id}")
        return await send_block(request, hex_id)

    @app.api_route("/blocks/{hex_id}", methods=["GET", "HEAD"], tags=["blocks"])
    async def block(request: Request, hex_id: str) -> Response:
        return await send_block(request, hex_id)

    @app.post("/blocks/missing", tags=["blocks"])
    async def missing(request: Request) -> list[str]:
        """Which of the given block ids the hub does not hold (a JSON list of hex ids)."""
        try:
            document = json.loads(await _read_body(request, _MAX_SMALL_BODY))
        except ValueError as exc:
            raise HubRefused(400, f"the body is not JSON: {exc}") from exc
        if not isinstance(document, list) or not all(isinstance(i, str) for i in document):
            raise HubRefused(400, "the body must be a JSON list of hex block ids")
        if len(document) > MAX_MISSING_IDS:
            raise HubRefused(400, f"at most {MAX_MISSING_IDS} ids per request")
        ids = [_parse_id(text) for text in document]
        return [id_.hex() for id_ in await missing_blocks(hub.store, ids)]

    @app.put("/blocks/{hex_id}", tags=["blocks"])
    async def put_block(request: Request, hex_id: str) -> dict[str, Any]:
        """Store one block; signed by any twin; the body must hash to the id."""
        id_ = _parse_id(hex_id)
        credentials = await _before_body(
            request, hub.auth.credentials(request.headers.get("authorization")), MAX_BLOCK_BYTES
        )
        body = await _read_body(request, MAX_BLOCK_BYTES)
        await hub.auth.verify(credentials, "PUT", request.url.path, blake2b256(body))
        if block_id(body) != id_:
            raise HubRefused(400, f"the body is not block {id_.hex()}: its BLAKE2b-256 differs")
        await hub.store.set(id_, body)
        return {"id": id_.hex(), "size": len(body)}


def _flist_routes(app: FastAPI, hub: Hub) -> None:
    def describe(owner: int, name: str, flist_hash: str, size: int) -> dict[str, Any]:
        url = f"{hub.public_url}/flists/{owner}/{name}"
        return {"owner": owner, "name": name, "hash": flist_hash, "size": size, "url": url}

    async def owner_signed(request: Request, twin_id: int, name: str) -> Credentials:
        credentials = await hub.auth.credentials(request.headers.get("authorization"))
        if credentials.twin_id != twin_id:
            raise HubRefused(
                403, f"twin {credentials.twin_id} cannot change flists of twin {twin_id}"
            )
        check_name(name)
        return credentials

    @app.get("/flists", tags=["flists"])
    async def owners() -> list[dict[str, int]]:
        rows = await asyncio.to_thread(hub.storage.owners)
        return [{"owner": owner, "count": count} for owner, count in rows]

    @app.get("/flists/by-hash/{flist_hash}", tags=["flists"])
    async def by_hash(flist_hash: str) -> StreamingResponse:
        path = await asyncio.to_thread(hub.storage.by_hash, flist_hash)
        if path is None:
            raise HubRefused(404, f"no flist has the hash {flist_hash}")
        return _send_flist(path, flist_hash)

    @app.get("/flists/{twin_id}", tags=["flists"])
    async def flists_of(twin_id: TwinId) -> list[dict[str, Any]]:
        records = await asyncio.to_thread(hub.storage.flists_of, twin_id)
        return [
            {"name": r.name, "hash": r.hash, "size": r.size, "updated": r.updated} for r in records
        ]

    @app.get("/flists/{twin_id}/{name}", tags=["flists"])
    async def flist(twin_id: TwinId, name: str) -> StreamingResponse:
        record = await asyncio.to_thread(hub.storage.get, twin_id, name)
        if record is None:
            raise HubRefused(404, f"twin {twin_id} has no flist {name!r}")
        return _send_flist(hub.storage.path_of(record.hash), record.hash)

    @app.put("/flists/{twin_id}/{name}", tags=["flists"])
    async def push(request: Request, twin_id: TwinId, name: str) -> dict[str, Any]:
        """Publish a .fl as ``twin_id``/``name``; every block it names must be here first."""
        credentials = await _before_body(
            request, owner_signed(request, twin_id, name), MAX_FLIST_BYTES
        )
        upload = hub.storage.temp_path()
        try:
            body_hash = await _spool_body(request, MAX_FLIST_BYTES, upload)
            await hub.auth.verify(credentials, "PUT", request.url.path, body_hash)
            ids = await asyncio.to_thread(prepare_flist, upload, blocks_url=hub.blocks_url)
            lacking = await missing_blocks(hub.store, ids)
            if lacking:
                raise HubRefused(
                    409,
                    f"{len(lacking)} of the {len(ids)} blocks of this flist are not on the "
                    f"hub (first: {lacking[0].hex()}); upload them first",
                )
            record = await asyncio.to_thread(hub.storage.store, twin_id, name, upload)
        finally:
            with contextlib.suppress(OSError):
                upload.unlink()
        return describe(record.owner, record.name, record.hash, record.size)

    @app.delete("/flists/{twin_id}/{name}", tags=["flists"])
    async def delete(request: Request, twin_id: TwinId, name: str) -> dict[str, Any]:
        credentials = await _before_body(
            request, owner_signed(request, twin_id, name), _MAX_SMALL_BODY
        )
        body = await _read_body(request, _MAX_SMALL_BODY)
        await hub.auth.verify(credentials, "DELETE", request.url.path, blake2b256(body))
        if not await asyncio.to_thread(hub.storage.delete, twin_id, name):
            raise HubRefused(404, f"twin {twin_id} has no flist {name!r}")
        return {"owner": twin_id, "name": name, "deleted": True}
