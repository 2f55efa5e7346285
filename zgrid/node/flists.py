"""Container images on a node: flists downloaded from a hub into a content-addressed cache,
each mounted once, read-only, as the shared lower of every container that uses it.

On disk, under the manager's root:

- ``fl/<hash>.fl``: every flist downloaded, named by its content hash (BLAKE2b-256, the
  hub's ``X-Flist-Hash``), checked before it is kept and again before it is mounted;
- ``urls/<digest>.json``: which hash a URL last resolved to, for when the hub is down;
- ``blocks/``: one block cache shared by every flist (blocks are content-addressed);
- ``lowers/<hash>``: the mount point of that flist, served by a mount process detached
  from the daemon (:mod:`zgrid.node.lowermount`; it outlives a kill -9 of the daemon);
  its pid is in ``run/<hash>.pid`` and its output in ``run/<hash>.log``.

Which image a URL means: a URL naming a published flist (``/flists/<twin>/<name>``) is
asked of the hub on every :meth:`FlistManager.lower` without ``pinned``, so a new
deployment gets the latest push (a header round trip when the .fl is already cached).
A workload keeps the image it started with: the caller stores :attr:`Lower.hash` and
passes it back as ``pinned`` on every later call (repeat provision, restore after a
reboot), which uses the cached .fl with no network at all, or fetches exactly that hash
while the hub still has it (never the name's newer push). When the hub cannot be
reached, a URL resolved before is served from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from zgrid.atomic import write_atomic
from zgrid.flist import FlistError, FlistReader, check_tree
from zgrid.node.errors import NodeError, ProvisionError
from zgrid.node.lowermount import FUSE_TYPE, LowerMount, process_alive
from zgrid.node.rootfs import MountEntry, read_mountinfo

__all__ = ["MAX_FLIST_BYTES", "FlistManager", "ImageConfig", "Lower"]

log = logging.getLogger(__name__)

# The hub's own limit on a published .fl (zgrid.flist.hub.limits, not imported: the hub
# package brings the ledger client and the web stack, which a node does not need).
MAX_FLIST_BYTES = 64 << 20
_HASH = re.compile(r"^[0-9a-f]{64}$")
_BY_HASH = re.compile(r"^(?P<hub>.*)/flists/by-hash/(?P<hash>[0-9a-f]{64})/?$")
_BY_NAME = re.compile(r"^(?P<hub>.*)/flists/[^/]+/[^/]+$")
_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """How to run the image, from the flist's tags (written by ``zgrid flist convert``).

    An flist packed from a directory has no tags: everything empty, workdir "/".
    """

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    user: str = ""  # "uid[:gid]" or a name from the image, "" for root

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ImageConfig:
        """Raises ValueError naming the tag that is malformed."""
        env = []
        for item in _string_list(tags, "env"):
            name, equals, value = item.partition("=")
            if not name or not equals:
                raise ValueError(f"the env tag holds {item!r}, not NAME=value")
            env.append((name, value))
        workdir = tags.get("workdir") or "/"
        if not workdir.startswith("/"):
            raise ValueError(f"the workdir tag {workdir!r} is not an absolute path")
        return cls(
            entrypoint=tuple(_string_list(tags, "entrypoint")),
            cmd=tuple(_string_list(tags, "cmd")),
            env=tuple(env),
            workdir=workdir,
            user=tags.get("user", ""),
        )


def _string_list(tags: dict[str, str], name: str) -> list[str]:
    text = tags.get(name)
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"the {name} tag is not JSON") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"the {name} tag is not a list of strings")
    return value


@dataclass(frozen=True, slots=True)
class Lower:
    """A mounted flist: its content hash, where it is mounted, and how to run it."""

    hash: str
    path: Path
    config: ImageConfig


class _Unreachable(Exception):
    """The hub could not be asked (connection, time-out, 5xx): a cached answer may do."""


class _Damaged(Exception):
    """A cached .fl failed its checks; it is removed and fetched again."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    cause: BaseException | None = exc
    while cause is not None:  # the OSError under httpx's and anyio's wrappers
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    for marker, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host name"),
        ("nodename nor servname", "unknown host name"),
        ("temporary failure in name resolution", "host name lookup failed"),
        ("network is unreachable", "network unreachable"),
        ("no route to host", "no route to host"),
    ):
        if marker in lowered:
            return reason
    return text


def _hub_message(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError):
        document = response.json()
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
    return response.text[:300].strip() or response.reason_phrase


def _flist_failure(exc: FlistError, path: Path) -> str:
    """An flist error about the downloaded file, without the file's temporary name."""
    text = str(exc)
    prefix = f"{path} is not an flist "
    if text.startswith(prefix):
        return text[len(prefix) :].strip("()")
    return text.replace(f"{path}: ", "").replace(str(path), "the file")


def _check_flist(path: Path) -> ImageConfig:
    """What a cached or downloaded .fl must pass before it is used: readable, no hostile
    entry, a block store named, well-formed tags. Raises FlistError or ValueError."""
    with FlistReader(path) as reader:
        check_tree(reader, allow_devices=True, allow_setuid=True)
        if not reader.routes():
            raise ValueError("it names no block store")
        return ImageConfig.from_tags(reader.tags())


def _file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class FlistManager:
    """Downloads, caches and mounts the flists of one node's containers."""

    def __init__(
        self,
        root: Path,
        *,
        scope: str,
        python: str = sys.executable,
        http: httpx.AsyncClient | None = None,
        mount_timeout: float = 30.0,
        download_timeout: float = 120.0,
        connect_timeout: float = 5.0,
    ) -> None:
        # Compared with /proc/self/mountinfo, which has absolute paths without symlinks.
        root = root.resolve()
        self.root = root
        self.scope = scope  # mount points are under root, which is the node's own
        self.python = python
        self.mount_timeout = mount_timeout
        self.download_timeout = download_timeout
        self._http = http
        self._own_http = http is None
        self._timeout = httpx.Timeout(30.0, connect=connect_timeout)
        self._flists = root / "fl"
        self._urls = root / "urls"
        self._blocks = root / "blocks"
        self._lowers = root / "lowers"
        self._run = root / "run"
        self._locks: dict[str, asyncio.Lock] = {}
        self._configs: dict[str, ImageConfig] = {}  # checked already, by hash
        self._partials_cleared = False

    # -- paths -------------------------------------------------------------------------

    def flist_path(self, flist_hash: str) -> Path:
        return self._flists / f"{flist_hash}.fl"

    def mount_point(self, flist_hash: str) -> Path:
        return self._lowers / flist_hash

    def _mount(self, flist_hash: str) -> LowerMount:
        return LowerMount(
            flist=self.flist_path(flist_hash),
            mount_point=self.mount_point(flist_hash),
            pid_file=self._run / f"{flist_hash}.pid",
            log_file=self._run / f"{flist_hash}.log",
            cache=self._blocks,
        )

    def _url_file(self, url: str) -> Path:
        return self._urls / f"{hashlib.blake2b(url.encode(), digest_size=16).hexdigest()}.json"

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- the public interface ----------------------------------------------------------

    async def lower(self, url: str, *, pinned: str | None = None) -> Lower:
        """The mounted flist of ``url``; with ``pinned``, exactly the flist of that hash
        (which ``url`` once gave): the cached copy if there is one, else fetched."""
        _check_url(url)
        if pinned is not None and not _HASH.match(pinned):
            raise ProvisionError(f"{pinned!r} is not an flist hash (64 lowercase hex digits)")
        known = pinned
        by_hash = _BY_HASH.match(url)
        if known is None and by_hash is not None:
            known = by_hash["hash"]  # immutable: no need to ask the hub
        if known is not None:
            warm = self._warm(known)
            if warm is not None:
                return warm
        try:
            async with self._lock(f"url:{url}:{pinned}"):
                flist_hash = await self._obtain(url, known)
            async with self._lock(flist_hash):
                return await self._mounted_lower(url, flist_hash)
        except OSError as exc:
            raise NodeError(f"the flist cache under {self.root} failed: {exc}") from exc

    async def mounted(self) -> dict[str, Path]:
        """The lowers mounted and served now, by hash (also those of an earlier run)."""
        entries = await asyncio.to_thread(read_mountinfo)
        found = {}
        for entry in entries:
            if entry.mount_point.parent == self._lowers and entry.fstype == FUSE_TYPE:
                flist_hash = entry.mount_point.name
                if _HASH.match(flist_hash) and self._mount(flist_hash).server_pid() is not None:
                    found[flist_hash] = entry.mount_point
        return found

    async def unmount(self, flist_hash: str) -> bool:
        """Stop serving the lower of ``flist_hash`` (its .fl and blocks stay cached).

        Returns False, leaving it mounted, while an overlay still uses it.
        """
        async with self._lock(flist_hash):
            entries = await asyncio.to_thread(read_mountinfo)
            user = self._overlay_user(flist_hash, entries)
            if user is not None:
                log.info("lower %s is in use by the overlay on %s: left mounted", flist_hash, user)
                return False
            await self._mount(flist_hash).stop()
            with contextlib.suppress(OSError):
                self.mount_point(flist_hash).rmdir()
            return True

    async def sweep(self, in_use: set[str]) -> list[str]:
        """Unmount every lower (and stop every mount process) not in ``in_use``; return the
        hashes unmounted."""
        entries = await asyncio.to_thread(read_mountinfo)
        candidates = {
            entry.mount_point.name
            for entry in entries
            if entry.mount_point.parent == self._lowers and _HASH.match(entry.mount_point.name)
        }
        with contextlib.suppress(OSError):
            candidates |= {path.stem for path in self._run.glob("*.pid") if _HASH.match(path.stem)}
        swept = []
        for flist_hash in sorted(candidates - in_use):
            if await self.unmount(flist_hash):
                swept.append(flist_hash)
        return swept

    async def aclose(self) -> None:
        """Close the HTTP client if it is the manager's own. Mounts go on being served."""
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- resolving a URL to a cached, checked .fl --------------------------------------

    async def _obtain(self, url: str, known: str | None) -> str:
        """The hash of the flist ``url`` means (``known`` if given), its .fl cached."""
        if known is not None:
            if await asyncio.to_thread(self.flist_path(known).is_file):
                return known
            got = await self._resolve_or_fail(url)
            if got == known:
                return got
            by_name = _BY_NAME.match(url)
            if by_name is not None:
                # The name moved on to a newer push; the hub may still have this one.
                alternative = f"{by_name['hub']}/flists/by-hash/{known}"
                with contextlib.suppress(ProvisionError):
                    if await self._resolve_or_fail(alternative) == known:
                        return known
            raise ProvisionError(
                f"flist {url} is now {got}, not the {known} this workload was deployed with, "
                "and the hub no longer has that one"
            )
        try:
            return await self._resolve(url)
        except _Unreachable as exc:
            remembered = await asyncio.to_thread(self._remembered, url)
            if remembered is not None and self.flist_path(remembered).is_file():
                log.warning("%s; using the cached flist %s of %s", exc, remembered, url)
                return remembered
            raise ProvisionError(str(exc)) from None

    async def _resolve_or_fail(self, url: str) -> str:
        try:
            return await self._resolve(url)
        except _Unreachable as exc:
            raise ProvisionError(str(exc)) from None

    def _remembered(self, url: str) -> str | None:
        try:
            document = json.loads(self._url_file(url).read_text())
        except (OSError, ValueError):
            return None
        found = document.get("hash") if isinstance(document, dict) else None
        return found if isinstance(found, str) and _HASH.match(found) else None

    def _remember(self, url: str, flist_hash: str) -> None:
        if self._remembered(url) == flist_hash:
            return
        self._urls.mkdir(parents=True, exist_ok=True)
        write_atomic(self._url_file(url), json.dumps({"url": url, "hash": flist_hash}).encode())

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=True)
        return self._http

    async def _resolve(self, url: str) -> str:
        """Ask the hub for ``url``; download the .fl unless its hash is cached already."""
        try:
            async with asyncio.timeout(self.download_timeout):
                flist_hash = await self._download(url)
        except TimeoutError:
            raise ProvisionError(
                f"downloading flist {url} took longer than {self.download_timeout:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise _Unreachable(
                f"cannot reach the hub at {_origin(url)}: {_transport_reason(exc)}"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ProvisionError(f"cannot download flist {url}: {exc}") from exc
        try:
            await asyncio.to_thread(self._remember, url, flist_hash)
        except OSError as exc:
            log.warning("cannot remember the hash of %s: %s", url, exc)
        return flist_hash

    async def _download(self, url: str) -> str:
        async with self._client().stream("GET", url, timeout=self._timeout) as response:
            status = response.status_code
            if status >= 400:
                await response.aread()
                if status == 404:
                    raise ProvisionError(f"flist {url} not found on hub (404)")
                if status >= 500 or status == 429:
                    raise _Unreachable(
                        f"the hub at {_origin(url)} cannot serve {url} now ({status}: "
                        f"{_hub_message(response)})"
                    )
                raise ProvisionError(
                    f"the hub refused flist {url} ({status}: {_hub_message(response)})"
                )
            claimed = str(response.headers.get("x-flist-hash", "")).lower()
            cached = _HASH.match(claimed) is not None and self.flist_path(claimed).is_file()
            if cached:
                return claimed  # the body is the file cached already: not downloaded again
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_FLIST_BYTES:
                raise ProvisionError(
                    f"{url} is {int(declared)} bytes, larger than an flist may be "
                    f"({MAX_FLIST_BYTES})"
                )
            await asyncio.to_thread(self._prepare_downloads)
            partial = self._flists / f".{os.getpid()}.{os.urandom(6).hex()}.part"
            try:
                flist_hash = await self._receive(url, response, partial)
                if claimed and claimed != flist_hash:
                    raise ProvisionError(
                        f"the hub sent {url} with hash {flist_hash}, not the {claimed} it claims"
                    )
                try:
                    config = await asyncio.to_thread(_check_flist, partial)
                except (FlistError, ValueError) as exc:
                    reason = (
                        _flist_failure(exc, partial) if isinstance(exc, FlistError) else str(exc)
                    )
                    raise ProvisionError(f"{url} is not an flist: {reason}") from None
                await asyncio.to_thread(os.replace, partial, self.flist_path(flist_hash))
            finally:
                with contextlib.suppress(OSError):
                    partial.unlink()
        self._configs[flist_hash] = config
        return flist_hash

    def _prepare_downloads(self) -> None:
        self._flists.mkdir(parents=True, exist_ok=True)
        if self._partials_cleared:
            return
        # Downloads cut short by a crash of an earlier run of the daemon.
        for partial in self._flists.glob(".*.part"):
            pid = partial.name.split(".")[1]
            if not pid.isdigit() or (int(pid) != os.getpid() and not process_alive(int(pid))):
                with contextlib.suppress(OSError):
                    partial.unlink()
        self._partials_cleared = True

    @staticmethod
    async def _receive(url: str, response: httpx.Response, partial: Path) -> str:
        digest = hashlib.blake2b(digest_size=32)
        size = 0
        handle = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_FLIST_BYTES:
                    raise ProvisionError(
                        f"{url} is larger than an flist may be ({MAX_FLIST_BYTES} bytes)"
                    )
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        except OSError as exc:
            raise NodeError(f"cannot write {partial}: {exc}") from exc
        finally:
            handle.close()
        return digest.hexdigest()

    # -- mounting ----------------------------------------------------------------------

    def _warm(self, flist_hash: str) -> Lower | None:
        """The lower, when it is mounted and served and its config known: no I/O but
        /proc."""
        config = self._configs.get(flist_hash)
        if config is None or not self._mount(flist_hash).is_served():
            return None
        return Lower(flist_hash, self.mount_point(flist_hash), config)

    async def _config(self, flist_hash: str) -> ImageConfig:
        config = self._configs.get(flist_hash)
        if config is not None:
            return config
        path = self.flist_path(flist_hash)

        def check() -> ImageConfig:
            if _file_hash(path) != flist_hash:
                raise _Damaged(f"{path} does not match its hash")
            try:
                return _check_flist(path)
            except (FlistError, ValueError) as exc:
                raise _Damaged(f"{path}: {exc}") from exc

        config = await asyncio.to_thread(check)
        self._configs[flist_hash] = config
        return config

    async def _mounted_lower(self, url: str, flist_hash: str) -> Lower:
        try:
            config = await self._config(flist_hash)
        except _Damaged as exc:
            log.warning("cached flist damaged (%s): fetching it again", exc)
            with contextlib.suppress(OSError):
                self.flist_path(flist_hash).unlink()
            if await self._obtain(url, flist_hash) != flist_hash:
                raise ProvisionError(
                    f"flist {url} cannot be fetched again as {flist_hash}"
                ) from None
            try:
                config = await self._config(flist_hash)
            except _Damaged as again:
                raise ProvisionError(f"the flist {url} fails its checks: {again}") from None
        warm = self._warm(flist_hash)
        if warm is not None:
            return warm
        mount = self._mount(flist_hash)
        await mount.stop()  # a dead mount, or a process of an earlier run still starting
        await mount.start(self.python, self.mount_timeout)
        return Lower(flist_hash, self.mount_point(flist_hash), config)

    def _overlay_user(self, flist_hash: str, entries: list[MountEntry]) -> Path | None:
        lower = str(self.mount_point(flist_hash))
        for entry in entries:
            if entry.fstype == "overlay":
                lowerdirs = (entry.super_option("lowerdir") or "").split(":")
                if lower in lowerdirs:
                    return entry.mount_point
        return None


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port or IPv6 address raises here
    except ValueError:
        raise ProvisionError(f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProvisionError(f"{url!r} is not an http(s) URL of an flist")
