"""Errors of the flist hub, below :class:`zgrid.flist.errors.HubError`.

HubError                (zgrid.flist.errors) the hub refused a request or cannot be reached
└── HubRefused          the hub answered a request with a refusal; ``status`` is its HTTP
                        status and ``code`` the error body's code (400 malformed, 401 not
                        signed right or replayed, 403 not yours, 404 unknown, 409 blocks
                        missing, 413 too large, 429/503 too busy or ledger unavailable)

The server itself refuses with :class:`zgrid.web.RequestRefused`.
"""

from __future__ import annotations

from zgrid.flist.errors import HubError

__all__ = ["HubRefused"]


class HubRefused(HubError):
    """A refusal from the hub, raised by the client with the hub's status, code and message."""

    def __init__(self, status: int, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
