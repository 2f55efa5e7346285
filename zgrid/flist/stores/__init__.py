"""Block stores: where blocks live (a directory, a Zero-DB namespace, an HTTP server), and
the router that spreads blocks over several of them by the first byte of their id."""

from zgrid.flist.stores.base import BlockStore
from zgrid.flist.stores.router import Route, Router, parse_route
from zgrid.flist.stores.url import open_store, public_url

__all__ = ["BlockStore", "Route", "Router", "open_store", "parse_route", "public_url"]
