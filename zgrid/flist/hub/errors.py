"""Errors of the flist hub, below :class:`zgrid.flist.errors.HubError`.

HubError                (zgrid.flist.errors) the hub refused a request or cannot be reached
└── HubRefused          a request was refused; ``status`` is the HTTP status it gets
                        (400 malformed, 401 not signed right, 403 not yours, 404 unknown,
                        409 blocks missing, 413 too large, 503 ledger or store unavailable)
"""

from __future__ import annotations

from zgrid.flist.errors import HubError

__all__ = ["HubRefused"]


class HubRefused(HubError):
    """The hub refuses a request: raised by the server to answer, and by the client on reply."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
