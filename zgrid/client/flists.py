"""Which flist URL each machine of a spec is given: its reference resolved on the hub.

A machine's ``flist`` is one of:

- an ``http(s)://`` URL: given to the node as it is. When it names a published flist of
  the configured hub (``<hub>/flists/<twin>/<name>``) the hub is asked whether it is
  there, so a typo fails before any contract is made; a URL elsewhere is only checked to
  be well formed (the node reports an flist it cannot fetch);
- ``<twin_id>/<name>``: that twin's flist on the hub;
- a bare ``<name>``: the one flist of that name among every publisher of the hub.

A name matches a published flist of exactly that name, or of that name with ``.fl``
appended (``busybox`` finds ``busybox.fl``); an exact match wins over the ``.fl`` one.
Every hub answer is bounded in bytes and in entries, and each request in time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from zgrid.client.errors import FlistNotFound
from zgrid.client.spec.model import Spec

__all__ = ["MAX_HUB_ANSWER_BYTES", "MAX_PUBLISHERS", "resolve_flists"]

MAX_URL_LENGTH = 2048  # what a zmachine's flist field holds
MAX_HUB_ANSWER_BYTES = 4 << 20  # one listing of the hub
MAX_PUBLISHERS = 1000  # owners searched for a bare name
MAX_LISTED = 10_000  # entries of one listing
_PARALLEL = 8
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # the hub's flist names
_OWNED = re.compile(r"^(?P<twin>[0-9]{1,10})/(?P<name>[^/]+)$")
_HUB_PATH = re.compile(r"^/flists/(?P<twin>[0-9]{1,10})/(?P<name>[^/]+)$")


async def resolve_flists(spec: Spec, *, hub: str | None, timeout: float = 10) -> dict[str, str]:
    """Every distinct ``machine.flist`` of ``spec`` -> the URL its node is given.

    ``hub`` is the network's hub URL (None: none configured, only URLs resolve);
    ``timeout`` bounds each hub request in seconds. Raises FlistNotFound naming the
    machine, the reference and the hub when a reference does not resolve to one flist.
    """
    users: dict[str, list[str]] = {}
    for machine in spec.machines:
        users.setdefault(machine.flist, []).append(machine.name)
    if not users:
        return {}
    hub_url = _checked_hub(hub) if hub is not None else None
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
        resolver = _Resolver(http, hub_url, timeout)
        return {
            reference: await resolver.resolve(reference, machines)
            for reference, machines in users.items()
        }


def _checked_hub(hub: str) -> str:
    url = hub.strip().rstrip("/")
    problem = _url_problem(url)
    if problem:
        raise FlistNotFound(f"the hub URL {hub!r} is not usable: {problem}")
    return url


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not a well-formed http(s) URL, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "it contains white space or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return "not an http:// or https:// URL"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0"
    return None


def _machines(machines: Sequence[str]) -> str:
    names = ", ".join(repr(name) for name in machines)
    return f"machine {names}" if len(machines) == 1 else f"machines {names}"


class _Resolver:
    def __init__(self, http: httpx.AsyncClient, hub: str | None, timeout: float) -> None:
        self._http = http
        self._hub = hub
        self._timeout = timeout
        self._listings: dict[int, list[str]] = {}

    async def resolve(self, reference: str, machines: Sequence[str]) -> str:
        whose = f"flist {reference!r} of {_machines(machines)}"
        if reference.lower().startswith(("http://", "https://")):
            return await self._url(reference, whose)
        owned = _OWNED.fullmatch(reference)
        if owned is None and not _NAME.fullmatch(reference):
            raise FlistNotFound(
                f"{whose} is neither an http(s) URL, <twin_id>/<name> nor a flist name "
                "(1 to 128 of A-Z a-z 0-9 . _ -)"
            )
        if self._hub is None:
            raise FlistNotFound(
                f"{whose} is not a URL: a hub must be configured for this network to look it "
                "up (or give the flist's full URL)"
            )
        if owned is not None:
            twin, name = int(owned["twin"]), owned["name"]
            if not _NAME.fullmatch(name):
                raise FlistNotFound(f"{whose}: {name!r} is not a flist name")
            found = _match(name, await self._listing(twin, whose))
            if found is None:
                raise FlistNotFound(
                    f"{whose} is not on the hub {self._hub}: twin {twin} publishes no flist "
                    f"named {name!r}"
                )
            return self._flist_url(twin, found)
        return await self._search(reference, whose)

    def _flist_url(self, twin: int, name: str) -> str:
        return f"{self._hub}/flists/{twin}/{name}"

    async def _url(self, url: str, whose: str) -> str:
        problem = _url_problem(url)
        if problem:
            raise FlistNotFound(f"{whose} is not a valid URL: {problem}")
        if self._hub is None or not url.startswith(self._hub + "/"):
            return url
        on_hub = _HUB_PATH.fullmatch(url[len(self._hub) :])
        if on_hub is None:
            return url  # another route of the hub (by-hash ...): the node fetches it
        twin, name = int(on_hub["twin"]), on_hub["name"]
        if name not in await self._listing(twin, whose):
            raise FlistNotFound(
                f"{whose} is not on the hub {self._hub}: twin {twin} publishes no flist "
                f"named {name!r}"
            )
        return url

    async def _search(self, name: str, whose: str) -> str:
        owners = await self._owners(whose)
        slots = asyncio.Semaphore(_PARALLEL)

        async def names_of(owner: int) -> tuple[int, str | None]:
            async with slots:
                return owner, _match(name, await self._listing(owner, whose))

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(names_of(owner)) for owner in owners]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        found = [(owner, match) for owner, match in (t.result() for t in tasks) if match]
        if not found:
            raise FlistNotFound(f"{whose} is not on the hub {self._hub}: no publisher has it")
        if len(found) > 1:
            choices = ", ".join(f"{owner}/{match}" for owner, match in sorted(found))
            raise FlistNotFound(
                f"{whose} is ambiguous on the hub {self._hub}: {len(found)} publishers have "
                f"it; name one as <twin_id>/<name>: {choices}"
            )
        owner, match = found[0]
        return self._flist_url(owner, match)

    async def _owners(self, whose: str) -> list[int]:
        rows = await self._get_list("/flists", whose)
        owners: set[int] = set()
        for row in rows:
            owner = row.get("owner") if isinstance(row, dict) else None
            if not isinstance(owner, int) or isinstance(owner, bool) or owner < 0:
                raise FlistNotFound(
                    f"cannot look up {whose}: the hub {self._hub} lists publishers in a form "
                    "this client does not read"
                )
            owners.add(owner)
        if len(owners) > MAX_PUBLISHERS:
            raise FlistNotFound(
                f"cannot look up {whose} by name: the hub {self._hub} has more than "
                f"{MAX_PUBLISHERS} publishers; name it as <twin_id>/<name>"
            )
        return sorted(owners)

    async def _listing(self, owner: int, whose: str) -> list[str]:
        if owner not in self._listings:
            rows = await self._get_list(f"/flists/{owner}", whose)
            names: list[str] = []
            for row in rows:
                name = row.get("name") if isinstance(row, dict) else None
                if not isinstance(name, str):
                    raise FlistNotFound(
                        f"cannot look up {whose}: the hub {self._hub} lists the flists of twin "
                        f"{owner} in a form this client does not read"
                    )
                names.append(name)
            self._listings[owner] = names
        return self._listings[owner]

    async def _get_list(self, path: str, whose: str) -> list[Any]:
        url = f"{self._hub}{path}"
        failed = f"cannot look up {whose} on the hub {self._hub}"
        try:
            async with asyncio.timeout(self._timeout):
                body = await self._read(url, failed)
        except TimeoutError:
            raise FlistNotFound(f"{failed}: no answer in {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise FlistNotFound(f"{failed}: {reason}") from exc
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, list):
            raise FlistNotFound(f"{failed}: GET {path} did not answer a JSON list")
        if len(document) > MAX_LISTED:
            raise FlistNotFound(f"{failed}: GET {path} lists more than {MAX_LISTED} entries")
        return document

    async def _read(self, url: str, failed: str) -> bytes:
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                raise FlistNotFound(f"{failed}: GET {url} answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_HUB_ANSWER_BYTES:
                raise FlistNotFound(f"{failed}: its answer is larger than {MAX_HUB_ANSWER_BYTES}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_HUB_ANSWER_BYTES:
                    raise FlistNotFound(
                        f"{failed}: its answer is larger than {MAX_HUB_ANSWER_BYTES} bytes"
                    )
                chunks.append(chunk)
            return b"".join(chunks)


def _match(name: str, published: Sequence[str]) -> str | None:
    """``name`` itself if published, else ``name.fl`` if published, else None."""
    if name in published:
        return name
    if not name.endswith(".fl") and f"{name}.fl" in published:
        return f"{name}.fl"
    return None
