"""A plain HTTP server over a directory store that counts the requests for each block."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    counts: Counter[str]

    def do_GET(self) -> None:
        self.counts[self.path.rsplit("/", 1)[-1]] += 1
        super().do_GET()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def serving(directory: Path) -> Iterator[tuple[str, Counter[str]]]:
    """(base URL, per-block request counts) while the server runs."""
    counts: Counter[str] = Counter()
    handler = type("Handler", (_Handler,), {"counts": counts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()
