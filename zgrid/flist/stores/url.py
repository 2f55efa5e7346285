"""Store URLs: ``dir:///path``, ``zdb://[user:pass@]host[:port][/ns]``, ``http(s)://...``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from zgrid.flist.errors import StoreUrlError
from zgrid.flist.stores.base import BlockStore
from zgrid.flist.stores.dir import DirStore
from zgrid.flist.stores.http import HttpStore

__all__ = ["open_store", "public_url"]

ZDB_DEFAULT_PORT = 9900


def public_url(url: str) -> str:
    """``url`` without its password (the user name stays), as written into a published flist."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_store(url: str) -> BlockStore:
    """The store a URL names; raises :class:`StoreUrlError` naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StoreUrlError(f"bad store URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "dir":
        if parts.netloc or not parts.path.startswith("/"):
            raise StoreUrlError(f"bad store URL {url!r}: a dir store is dir:///absolute/path")
        return DirStore(Path(unquote(parts.path)))
    if scheme == "zdb":
        if not parts.hostname:
            raise StoreUrlError(f"bad store URL {url!r}: a zdb store needs a host")
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > 1:
            raise StoreUrlError(f"bad store URL {url!r}: the path is one namespace name")
        password = unquote(parts.password) if parts.password is not None else None
        # Loaded only for a zdb route: zgrid.zdb brings its server's web stack, which a
        # mount process (started for every container image) should not pay for.
        from zgrid.flist.stores.zdb import ZdbStore  # noqa: PLC0415

        return ZdbStore(
            host=parts.hostname,
            port=port or ZDB_DEFAULT_PORT,
            namespace=unquote(segments[0]) if segments else None,
            password=password,
            url=public_url(url),
        )
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise StoreUrlError(f"bad store URL {url!r}: no host")
        return HttpStore(url)
    raise StoreUrlError(
        f"bad store URL {url!r}: the scheme must be dir://, zdb://, http:// or https://"
    )
