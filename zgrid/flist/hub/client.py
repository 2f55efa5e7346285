"""HubClient: push flists and their blocks to a hub, pull them back, list and delete.

Every request is retried (stamina) on connection errors, 429 and 5xx answers, with
backoff, for up to ``retry_for`` seconds, so a long pull or push goes on across a restart
of the hub; each attempt is signed afresh (a new nonce). A flist pulled by name is
checked against its publisher's signature, with the key the ledger has for that twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import httpx
import stamina

from zgrid.chain import ChainClient, ChainError, NotFound
from zgrid.flist.block import block_id
from zgrid.flist.errors import BlockNotFound, FormatError, HubError
from zgrid.flist.hub.auth import FLIST_SIGNATURE_HEADER, authorization, sign_flist, verify_flist
from zgrid.flist.hub.errors import HubRefused
from zgrid.flist.hub.ingest import point_at_hub
from zgrid.flist.hub.limits import MAX_BLOCK_BYTES, MAX_FLIST_BYTES, MAX_MISSING_IDS, NAME_PATTERN
from zgrid.flist.hub.results import (
    FlistEntry,
    OwnerEntry,
    PullReport,
    PushReport,
    TransferProgress,
)
from zgrid.flist.meta import FlistReader
from zgrid.flist.stores import Router
from zgrid.identity import Identity, InvalidKeyError, blake2b256, public_key_from_address

__all__ = ["HubClient"]

_T = TypeVar("_T")
_MAX_DELAY = 2.0
_RETRIED_STATUSES = (429,)  # and every 5xx


class _Transient(Exception):
    """A failure worth trying again: the hub is unreachable or answered 5xx."""


_FlistEntries = list[FlistEntry]
_OwnerEntries = list[OwnerEntry]


def _hub_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an error answer: ``{"error": {"code", "message"}}``."""
    with contextlib.suppress(ValueError):
        document = response.json()
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error.get("code", "")), error["message"]
    return "", response.text[:200] or response.reason_phrase


def _hub_message(response: httpx.Response) -> str:
    return _hub_error(response)[1]


def _refused(response: httpx.Response) -> HubRefused:
    code, message = _hub_error(response)
    return HubRefused(response.status_code, message, code=code)


async def _run_bounded(
    items: Iterable[_T], work: Callable[[_T], Awaitable[None]], parallel: int
) -> None:
    """``work`` on every item, ``parallel`` at a time; the first failure cancels the rest."""
    slots = asyncio.Semaphore(max(1, parallel))

    async def one(item: _T) -> None:
        try:
            await work(item)
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            for item in items:
                await slots.acquire()  # at most ``parallel`` tasks exist at once
                group.create_task(one(item))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure is the one to report


class HubClient:
    """Talks to one hub. ``identity`` and ``twin_id`` sign writes; without them it only reads."""

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        twin_id: int | None = None,
        ledger: ChainClient | None = None,
        retry_for: float = 60.0,
        timeout: float = 30.0,
        parallel: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.identity = identity
        self.twin_id = twin_id
        self.ledger = ledger  # where publishers' keys come from; the caller closes it
        self.retry_for = retry_for
        self.parallel = parallel
        self._prefix = urlsplit(self.url).path
        self._host = httpx.Request("GET", self.url).headers["host"]
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    def _signer(self) -> tuple[Identity, int]:
        if self.identity is None or self.twin_id is None:
            raise HubError("writing to the hub needs an identity and its twin id")
        return self.identity, self.twin_id

    def _headers(self, method: str, path: str, body: bytes, signed: bool) -> dict[str, str]:
        if not signed:
            return {}
        identity, twin_id = self._signer()
        return authorization(
            identity,
            twin_id,
            method=method,
            host=self._host,
            path=self._prefix + path,
            body_hash=blake2b256(body),
            now=int(time.time()),
        )

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        try:
            async for round_ in stamina.retry_context(
                on=_Transient,
                # retry_for 0 means one try (stamina warns about timeout=0).
                attempts=1 if self.retry_for <= 0 else None,
                timeout=self.retry_for if self.retry_for > 0 else None,
                wait_initial=0.1,
                wait_max=_MAX_DELAY,
            ):
                with round_:
                    return await attempt()
        except _Transient as exc:
            raise HubError(f"{exc} ({what}: still failing after {self.retry_for:g} s)") from exc
        raise AssertionError("unreachable: stamina either returns or raises")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        signed: bool = False,
        json_body: bool = False,
        accept: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The hub's answer; 4xx (except ``accept``) raise HubRefused with the hub's message."""
        extra = headers or {}

        async def attempt() -> httpx.Response:
            headers = {**extra, **self._headers(method, path, body, signed)}
            if json_body:
                headers["Content-Type"] = "application/json"
            try:
                response = await self._http.request(method, path, content=body, headers=headers)
            except httpx.TransportError as exc:
                raise _Transient(
                    f"cannot reach the hub at {self.url}: {exc or type(exc).__name__}"
                ) from exc
            except httpx.HTTPError as exc:
                raise HubError(f"{method} {self.url}{path}: {exc}") from exc
            if response.status_code >= 500 or response.status_code in _RETRIED_STATUSES:
                raise _Transient(
                    f"the hub answered {response.status_code}: {_hub_message(response)}"
                )
            if response.status_code >= 400 and response.status_code not in accept:
                raise _refused(response)
            return response

        return await self._retrying(f"{method} {path}", attempt)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise HubError(f"the hub answered {method} {path} without JSON") from exc

    # -- blocks --------------------------------------------------------------------------------

    async def missing(self, ids: Iterable[bytes]) -> list[bytes]:
        """Those of ``ids`` the hub does not hold."""
        wanted = list(ids)
        lacking: list[bytes] = []
        for start in range(0, len(wanted), MAX_MISSING_IDS):
            batch = [id_.hex() for id_ in wanted[start : start + MAX_MISSING_IDS]]
            body = json.dumps(batch).encode()
            answer = await self._json("POST", "/blocks/missing", body=body, json_body=True)
            lacking.extend(bytes.fromhex(text) for text in answer)
        return lacking

    async def put_block(self, id_: bytes, data: bytes) -> None:
        if len(data) > MAX_BLOCK_BYTES:
            raise HubError(f"block {id_.hex()} is {len(data)} bytes; a hub takes {MAX_BLOCK_BYTES}")
        await self._request("PUT", f"/blocks/{id_.hex()}", body=data, signed=True)

    async def get_block(self, id_: bytes) -> bytes | None:
        """The block from the hub, checked against its id; None when the hub has not got it."""
        name = id_.hex()
        response = await self._request("GET", f"/blocks/{name[:2]}/{name}", accept=(404,))
        if response.status_code == 404:
            return None
        if block_id(response.content) != id_:
            raise HubError(f"the hub sent bytes that are not block {name}")
        return response.content

    # -- flists --------------------------------------------------------------------------------

    async def push(
        self,
        flist_path: Path,
        name: str,
        source_router: Router,
        on_progress: TransferProgress | None = None,
    ) -> PushReport:
        """Upload the blocks the hub lacks (read from ``source_router``), then the flist,
        its blocks routed to the hub and signed by this client's twin."""
        identity, twin_id = self._signer()
        if not NAME_PATTERN.match(name):
            raise HubError(f"bad flist name {name!r}: use 1 to 128 of A-Z a-z 0-9 . _ -")
        health = await self._json("GET", "/health")
        blocks_url = health.get("blocks") if isinstance(health, dict) else None
        if not isinstance(blocks_url, str):
            raise HubError(f"the hub at {self.url} does not say where its blocks are")
        body = await asyncio.to_thread(_as_published, flist_path, blocks_url)
        if len(body) > MAX_FLIST_BYTES:
            raise HubError(f"{flist_path} is {len(body)} bytes; a hub takes {MAX_FLIST_BYTES}")
        with FlistReader(flist_path) as reader:
            ids = [id_ for id_, _ in reader.all_blocks()]
        lacking = await self.missing(ids)
        done = len(ids) - len(lacking)
        if on_progress is not None:
            on_progress(done, len(ids))

        async def upload(id_: bytes) -> None:
            nonlocal done
            await self.put_block(id_, await source_router.get(id_))
            done += 1
            if on_progress is not None:
                on_progress(done, len(ids))

        await _run_bounded(lacking, upload, self.parallel)
        flist_hash = blake2b256(body).hex()
        signature = sign_flist(identity, twin_id, name, flist_hash)
        answer = await self._json(
            "PUT",
            f"/flists/{twin_id}/{name}",
            body=body,
            signed=True,
            headers={FLIST_SIGNATURE_HEADER: signature},
        )
        return PushReport(
            owner=int(answer["owner"]),
            name=str(answer["name"]),
            hash=str(answer["hash"]),
            size=int(answer["size"]),
            url=str(answer["url"]),
            blocks=len(ids),
            uploaded=len(lacking),
        )

    async def pull(
        self,
        owner: int,
        name: str,
        dest_path: Path,
        *,
        blocks_to: Router | None = None,
        on_progress: TransferProgress | None = None,
    ) -> PullReport:
        """Download ``owner``'s flist ``name`` to ``dest_path``, checked against the signature
        of ``owner`` (its key on the ledger) over the owner, the name and the content hash;
        with ``blocks_to``, also copy every block it names from the hub into that router."""
        if not NAME_PATTERN.match(name):
            raise HubError(f"bad flist name {name!r}")
        if self.ledger is None:
            raise HubError("pulling a flist by name checks its publisher's key: give a ledger")
        key = await self._publisher_key(owner)

        def check(flist_hash: str, headers: httpx.Headers) -> None:
            signature = headers.get(FLIST_SIGNATURE_HEADER.lower(), "")
            if not verify_flist(key, owner, name, flist_hash, signature):
                raise HubError(
                    f"the hub sent a flist for {owner}/{name} (hash {flist_hash}) that twin "
                    f"{owner} did not sign: refused"
                )

        path = f"/flists/{owner}/{name}"
        return await self._pull(path, check, dest_path, blocks_to, on_progress)

    async def _publisher_key(self, owner: int) -> bytes:
        assert self.ledger is not None
        try:
            twin = await self.ledger.twin(owner)
        except NotFound as exc:
            raise HubError(f"twin {owner} is not on the ledger") from exc
        except ChainError as exc:
            raise HubError(f"cannot read twin {owner}'s key from the ledger: {exc}") from exc
        try:
            return public_key_from_address(str(twin.get("account", "")))
        except InvalidKeyError as exc:
            raise HubError(f"twin {owner} has no usable key on the ledger") from exc

    async def pull_by_hash(
        self,
        flist_hash: str,
        dest_path: Path,
        *,
        blocks_to: Router | None = None,
        on_progress: TransferProgress | None = None,
    ) -> PullReport:
        """Like :meth:`pull`, for the flist with this content hash."""
        path = f"/flists/by-hash/{flist_hash}"

        def check(received: str, headers: httpx.Headers) -> None:
            if received != flist_hash:
                raise HubError(f"the hub sent flist {received} for {flist_hash}")

        return await self._pull(path, check, dest_path, blocks_to, on_progress)

    async def _pull(
        self,
        path: str,
        check: Callable[[str, httpx.Headers], None],
        dest_path: Path,
        blocks_to: Router | None,
        on_progress: TransferProgress | None,
    ) -> PullReport:
        partial = dest_path.with_name(f".{dest_path.name}.part")
        try:
            flist_hash, size, headers = await self._retrying(
                f"GET {path}", lambda: self._download(path, partial)
            )
            check(flist_hash, headers)
            await asyncio.to_thread(os.replace, partial, dest_path)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        if blocks_to is None:
            return PullReport(path=dest_path, hash=flist_hash, size=size)
        blocks, copied = await self._copy_blocks(dest_path, blocks_to, on_progress)
        return PullReport(dest_path, flist_hash, size, blocks=blocks, copied=copied)

    async def _download(self, path: str, partial: Path) -> tuple[str, int, httpx.Headers]:
        """The content hash computed of the bytes received, their size, and the headers."""
        digest = hashlib.blake2b(digest_size=32)
        size = 0
        try:
            async with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code >= 500 or response.status_code in _RETRIED_STATUSES:
                        raise _Transient(f"the hub answered {response.status_code}")
                    raise _refused(response)
                headers = response.headers
                claimed = response.headers.get("x-flist-hash", "")
                with partial.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_FLIST_BYTES:
                            raise HubError(
                                f"the flist at {path} is larger than {MAX_FLIST_BYTES} bytes"
                            )
                        digest.update(chunk)
                        handle.write(chunk)
        except httpx.TransportError as exc:
            raise _Transient(
                f"cannot reach the hub at {self.url}: {exc or type(exc).__name__}"
            ) from exc
        except OSError as exc:
            raise HubError(f"cannot write {partial}: {exc}") from exc
        if digest.hexdigest() != claimed:
            raise HubError(
                f"the flist at {path} does not match its hash (X-Flist-Hash {claimed or 'missing'})"
            )
        return claimed, size, headers

    async def _copy_blocks(
        self, flist: Path, blocks_to: Router, on_progress: TransferProgress | None
    ) -> tuple[int, int]:
        with FlistReader(flist) as reader:
            ids = [id_ for id_, _ in reader.all_blocks()]
        done = copied = 0

        async def copy(id_: bytes) -> None:
            nonlocal done, copied
            try:
                await blocks_to.get(id_)  # checks the id: a damaged copy is fetched again
            except BlockNotFound:
                data = await self.get_block(id_)
                if data is None:
                    raise HubError(f"the hub has no block {id_.hex()} of {flist.name}") from None
                await blocks_to.set(id_, data)
                copied += 1
            done += 1
            if on_progress is not None:
                on_progress(done, len(ids))

        await _run_bounded(ids, copy, self.parallel)
        return len(ids), copied

    @overload
    async def list(self, owner: None = None) -> _OwnerEntries: ...

    @overload
    async def list(self, owner: int) -> _FlistEntries: ...

    async def list(self, owner: int | None = None) -> _OwnerEntries | _FlistEntries:
        """``owner``'s flists; without an owner, every owner and how many flists each has."""
        if owner is None:
            rows = await self._json("GET", "/flists")
            return [OwnerEntry(owner=int(row["owner"]), count=int(row["count"])) for row in rows]
        rows = await self._json("GET", f"/flists/{owner}")
        return [
            FlistEntry(
                name=str(row["name"]),
                hash=str(row["hash"]),
                size=int(row["size"]),
                updated=int(row["updated"]),
            )
            for row in rows
        ]

    async def delete(self, name: str) -> None:
        """Remove this client's twin's flist ``name`` (its blocks stay on the hub)."""
        _, twin_id = self._signer()
        if not NAME_PATTERN.match(name):
            raise HubError(f"bad flist name {name!r}")
        await self._request("DELETE", f"/flists/{twin_id}/{name}", signed=True)


def _as_published(flist_path: Path, blocks_url: str) -> bytes:
    """The bytes of ``flist_path`` with every block routed to ``blocks_url`` (the file is
    served as pushed, so the route is set here, on a copy)."""
    with tempfile.TemporaryDirectory(prefix="zgrid-push-") as scratch:
        copy = Path(scratch) / "push.fl"
        try:
            shutil.copyfile(flist_path, copy)
        except OSError as exc:
            raise FormatError(f"cannot read {flist_path}: {exc.strerror}") from exc
        with FlistReader(copy):
            pass  # refuses what is not an flist, with a clear message
        point_at_hub(copy, blocks_url)
        return copy.read_bytes()
