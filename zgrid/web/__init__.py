"""The HTTP edge every zgrid server shares: one error body shape, bounded request
bodies, an OpenAPI that documents those errors, and serving an ASGI app with clean start failures and bounded connections."""

from zgrid.web.body import BODY_IDLE_TIMEOUT, iter_body, read_body
from zgrid.web.errors import RequestRefused, ServeError, WebError
from zgrid.web.openapi import ErrorBody, ErrorDetail, document_errors, error_responses
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
