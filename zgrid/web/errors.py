"""Errors of the HTTP edge every zgrid server shares.

ZgridError
  WebError              the root of this package
    RequestRefused      a request answered with an error status (413, 408, 400 ...)
    ServeError          a server could not start: address in use, no such address
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = ["RequestRefused", "ServeError", "WebError"]


class WebError(ZgridError):
    """Something the shared HTTP edge refused or could not do."""


class RequestRefused(WebError):
    """Answer this request with ``status`` and the error body ``{code, message}``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class ServeError(WebError):
    """A server could not start listening; the message says where and why."""
