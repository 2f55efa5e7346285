"""The HTTP edge every zgrid server shares: one error body shape, bounded request
bodies, and serving an ASGI app with clean start failures and bounded connections."""

from zgrid.web.body import BODY_IDLE_TIMEOUT, iter_body, read_body
from zgrid.web.errors import RequestRefused, ServeError, WebError
from zgrid.web.responses import (
    error_body,
    error_response,
    install_error_handlers,
    validation_message,
)
from zgrid.web.serve import AppServer, ConnectionLimits, bind_socket, listen_address

__all__ = [
    "BODY_IDLE_TIMEOUT",
    "AppServer",
    "ConnectionLimits",
    "RequestRefused",
    "ServeError",
    "WebError",
    "bind_socket",
    "error_body",
    "error_response",
    "install_error_handlers",
    "iter_body",
    "listen_address",
    "read_body",
    "validation_message",
]
