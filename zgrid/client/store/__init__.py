"""The deployer's local store under ``$ZGRID_HOME``: networks in clear, secrets sealed.

Networks (ledger, hub and explorer URLs, who signs there) are clear JSON and need no key.
Identities (mnemonics) and the deployer's records are sealed with libsodium's secretbox
under a key from a passphrase (Argon2id) or a key file; a plain ``identity.json`` of an
older home is moved in on first use.
"""

from __future__ import annotations

from zgrid.client.store.config import NetworkConfig, check_name, check_url
from zgrid.client.store.crypto import DEFAULT_KDF, KdfLimits
from zgrid.client.store.store import MAX_RECORD_BYTES, Notice, Store
from zgrid.client.store.unlock import KEY_FILE_VARIABLE, PASSPHRASE_VARIABLE, Prompt, Unlocker

__all__ = [
    "DEFAULT_KDF",
    "KEY_FILE_VARIABLE",
    "MAX_RECORD_BYTES",
    "PASSPHRASE_VARIABLE",
    "KdfLimits",
    "NetworkConfig",
    "Notice",
    "Prompt",
    "Store",
    "Unlocker",
    "check_name",
    "check_url",
]
