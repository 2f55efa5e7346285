"""The flist hub: a server that keeps flist blocks and the flists twins publish, and the
client that pushes and pulls them.

Blocks are served in the layout of the read-only ``http://`` store, and every published
flist routes its blocks to ``<public-url>/blocks``, so consumers read them straight from
the hub. Writes are signed by a twin's key on the ledger, once each, over where they go
and a declared body hash (:mod:`zgrid.flist.hub.auth`); a published flist is served byte
for byte as pushed, with its publisher's signature, which a pull checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zgrid.flist.hub.auth import (
    BODY_HASH_HEADER,
    FLIST_SIGNATURE_HEADER,
    MAX_CLOCK_SKEW,
    Authenticator,
    authorization,
    sign_flist,
    signed_digest,
    verify_flist,
)
from zgrid.flist.hub.client import HubClient
from zgrid.flist.hub.errors import HubRefused
from zgrid.flist.hub.limits import (
    MAX_BLOCK_BYTES,
    MAX_FLIST_BYTES,
    MAX_MISSING_IDS,
    UploadLimits,
)
from zgrid.flist.hub.nonces import NonceStore
from zgrid.flist.hub.results import (
    FlistEntry,
    OwnerEntry,
    PullReport,
    PushReport,
    TransferProgress,
)
from zgrid.flist.hub.storage import FlistRecord, FlistStorage
from zgrid.lazy import lazy_members

if TYPE_CHECKING:
    from zgrid.flist.hub.app import Hub, create_app
    from zgrid.flist.hub.server import DEFAULT_HUB_PORT, HubOptions, open_hub, run_hub, serve

# The server side (FastAPI, uvicorn) is loaded on first use: the client and the CLI import
# this package too and should not pay for a web framework they do not run.
_SERVER_SIDE = {
    "Hub": "zgrid.flist.hub.app",
    "create_app": "zgrid.flist.hub.app",
    "DEFAULT_HUB_PORT": "zgrid.flist.hub.server",
    "HubOptions": "zgrid.flist.hub.server",
    "open_hub": "zgrid.flist.hub.server",
    "run_hub": "zgrid.flist.hub.server",
    "serve": "zgrid.flist.hub.server",
}


__all__ = [
    "BODY_HASH_HEADER",
    "DEFAULT_HUB_PORT",
    "FLIST_SIGNATURE_HEADER",
    "MAX_BLOCK_BYTES",
    "MAX_CLOCK_SKEW",
    "MAX_FLIST_BYTES",
    "MAX_MISSING_IDS",
    "Authenticator",
    "FlistEntry",
    "FlistRecord",
    "FlistStorage",
    "Hub",
    "HubClient",
    "HubOptions",
    "HubRefused",
    "NonceStore",
    "OwnerEntry",
    "PullReport",
    "PushReport",
    "TransferProgress",
    "UploadLimits",
    "authorization",
    "create_app",
    "open_hub",
    "run_hub",
    "serve",
    "sign_flist",
    "signed_digest",
    "verify_flist",
]

__getattr__, __dir__ = lazy_members(__name__, _SERVER_SIDE, __all__)
