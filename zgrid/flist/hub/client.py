"""HubClient: push flists and their blocks to a hub, pull them back, list and delete.

Every request is retried on connection errors and 5xx answers, with backoff, for up to
``retry_for`` seconds, so a long pull or push goes on across a restart of the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import httpx

from zgrid.flist.block import block_id
from zgrid.flist.errors import BlockNotFound, HubError
from zgrid.flist.hub.auth import authorization
from zgrid.flist.hub.errors import HubRefused
from zgrid.flist.hub.limits import MAX_BLOCK_BYTES, MAX_FLIST_BYTES, MAX_MISSING_IDS, NAME_PATTERN
from zgrid.flist.hub.results import FlistEntry, OwnerEntry, Progress, PullReport, PushReport
from zgrid.flist.meta import FlistReader
from zgrid.flist.stores import Router
from zgrid.identity import Identity, blake2b256

__all__ = ["HubClient"]

_T = TypeVar("_T")
_MAX_DELAY = 2.0


class _Transient(Exception):
    """A failure worth trying again: the hub is unreachable or answered 5xx."""


_FlistEntries = list[FlistEntry]
_OwnerEntries = list[OwnerEntry]


def _hub_message(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError):
        document = response.json()
        message = document.get("error") if isinstance(document, dict) else None
        if isinstance(message, str):
            return message
    return response.text[:200] or response.reason_phrase


async def _run_bounded(
    items: Iterable[_T], work: Callable[[_T], Awaitable[None]], parallel: int
) -> None:
    """``work`` on every item, ``parallel`` at a time; the first failure stops the rest."""
    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:  # shared: each item goes to exactly one worker
            await work(item)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, parallel))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class HubClient:
    """Talks to one hub. ``identity`` and ``twin_id`` sign writes; without them it only reads."""

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        twin_id: int | None = None,
        retry_for: float = 60.0,
        timeout: float = 30.0,
        parallel: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.identity = identity
        self.twin_id = twin_id
        self.retry_for = retry_for
        self.parallel = parallel
        self._prefix = urlsplit(self.url).path
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
        header = authorization(
            identity, twin_id, method, self._prefix + path, blake2b256(body), now=int(time.time())
        )
        return {"Authorization": header}

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                return await attempt()
            except _Transient as exc:
                if time.monotonic() + delay > deadline:
                    raise HubError(
                        f"{exc} ({what}: still failing after {self.retry_for:g} s)"
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        signed: bool = False,
        json_body: bool = False,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """The hub's answer; 4xx (except ``accept``) raise HubRefused with the hub's message."""

        async def attempt() -> httpx.Response:
            headers = self._headers(method, path, body, signed)
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
            if response.status_code >= 500:
                raise _Transient(
                    f"the hub answered {response.status_code}: {_hub_message(response)}"
                )
            if response.status_code >= 400 and response.status_code not in accept:
                raise HubRefused(response.status_code, _hub_message(response))
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
        on_progress: Progress | None = None,
    ) -> PushReport:
        """Upload the blocks the hub lacks (read from ``source_router``), then the flist."""
        _, twin_id = self._signer()
        if not NAME_PATTERN.match(name):
            raise HubError(f"bad flist name {name!r}: use 1 to 128 of A-Z a-z 0-9 . _ -")
        body = await asyncio.to_thread(flist_path.read_bytes)
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
        answer = await self._json("PUT", f"/flists/{twin_id}/{name}", body=body, signed=True)
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
        on_progress: Progress | None = None,
    ) -> PullReport:
        """Download ``owner``'s flist ``name`` to ``dest_path``, checked against its hash; with
        ``blocks_to``, also copy every block it names from the hub into that router."""
        if not NAME_PATTERN.match(name):
            raise HubError(f"bad flist name {name!r}")
        return await self._pull(f"/flists/{owner}/{name}", None, dest_path, blocks_to, on_progress)

    async def pull_by_hash(
        self,
        flist_hash: str,
        dest_path: Path,
        *,
        blocks_to: Router | None = None,
        on_progress: Progress | None = None,
    ) -> PullReport:
        """Like :meth:`pull`, for the flist with this content hash."""
        path = f"/flists/by-hash/{flist_hash}"
        return await self._pull(path, flist_hash, dest_path, blocks_to, on_progress)

    async def _pull(
        self,
        path: str,
        expected: str | None,
        dest_path: Path,
        blocks_to: Router | None,
        on_progress: Progress | None,
    ) -> PullReport:
        partial = dest_path.with_name(f".{dest_path.name}.part")
        try:
            flist_hash, size = await self._retrying(
                f"GET {path}", lambda: self._download(path, partial)
            )
            if expected is not None and flist_hash != expected:
                raise HubError(f"the hub sent flist {flist_hash} for {expected}")
            await asyncio.to_thread(os.replace, partial, dest_path)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        if blocks_to is None:
            return PullReport(path=dest_path, hash=flist_hash, size=size)
        blocks, copied = await self._copy_blocks(dest_path, blocks_to, on_progress)
        return PullReport(dest_path, flist_hash, size, blocks=blocks, copied=copied)

    async def _download(self, path: str, partial: Path) -> tuple[str, int]:
        digest = hashlib.blake2b(digest_size=32)
        size = 0
        try:
            async with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code >= 500:
                        raise _Transient(f"the hub answered {response.status_code}")
                    raise HubRefused(response.status_code, _hub_message(response))
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
        return claimed, size

    async def _copy_blocks(
        self, flist: Path, blocks_to: Router, on_progress: Progress | None
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
