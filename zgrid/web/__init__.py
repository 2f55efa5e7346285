"""The HTTP edge every zgrid server shares: one error body shape, bounded request
bodies, an OpenAPI that documents those errors, and serving an ASGI app with clean start failures and bounded connections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.lazy import lazy_members
from zgrid.web.errors import RequestRefused, ServeError, WebError

if TYPE_CHECKING:
    from zgrid.web.body import BODY_IDLE_TIMEOUT, iter_body, read_body
    from zgrid.web.openapi import ErrorBody, ErrorDetail, document_errors, error_responses
    from zgrid.web.responses import (
        error_body,
        error_response,
        install_error_handlers,
        validation_message,
    )
    from zgrid.web.serve import AppServer, ConnectionLimits, bind_socket, listen_address

# Everything but the errors needs Starlette, FastAPI or uvicorn, so it is loaded on first
# use: clients raise and catch these errors too and should not pay for a web framework.
_LAZY = {
    "BODY_IDLE_TIMEOUT": "zgrid.web.body",
    "iter_body": "zgrid.web.body",
    "read_body": "zgrid.web.body",
    "ErrorBody": "zgrid.web.openapi",
    "ErrorDetail": "zgrid.web.openapi",
    "document_errors": "zgrid.web.openapi",
    "error_responses": "zgrid.web.openapi",
    "error_body": "zgrid.web.responses",
    "error_response": "zgrid.web.responses",
    "install_error_handlers": "zgrid.web.responses",
    "validation_message": "zgrid.web.responses",
    "AppServer": "zgrid.web.serve",
    "ConnectionLimits": "zgrid.web.serve",
    "bind_socket": "zgrid.web.serve",
    "listen_address": "zgrid.web.serve",
}


__all__ = [
    "BODY_IDLE_TIMEOUT",
    "AppServer",
    "ConnectionLimits",
    "ErrorBody",
    "ErrorDetail",
    "RequestRefused",
    "ServeError",
    "WebError",
    "bind_socket",
    "document_errors",
    "error_body",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "iter_body",
    "listen_address",
    "read_body",
    "validation_message",
]

__getattr__, __dir__ = lazy_members(__name__, _LAZY, __all__)
