"""Errors of zgrid.flist.

FlistError
├── FormatError         a .fl file is not an flist, or its metadata breaks a rule
│   └── UnsafeFlist     the metadata would write outside the target or make what it must not
├── BlockError          a block failed its id or key check, or cannot be decoded
├── StoreError          a block store cannot be reached, refuses a write, or misses a block
│   ├── BlockNotFound   no store of the block's range has it
│   └── StoreUrlError   a store URL cannot be parsed
├── ImageError          a Docker or OCI image archive cannot be converted
├── HubError            the hub refused a request or cannot be reached
└── MountError          a FUSE mount cannot be set up
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = [
    "BlockError",
    "BlockNotFound",
    "FlistError",
    "FormatError",
    "HubError",
    "ImageError",
    "MountError",
    "StoreError",
    "StoreUrlError",
    "UnsafeFlist",
]


class FlistError(ZgridError):
    """Root of the flist package's errors."""


class FormatError(FlistError):
    """The .fl file is not a readable flist, or an entry in it breaks the format."""


class UnsafeFlist(FormatError):
    """Metadata that would escape the target directory or create something forbidden."""


class BlockError(FlistError):
    """A block's content does not match its id or key, or cannot be decrypted."""


class StoreError(FlistError):
    """A block store failed: unreachable, read-only, or refusing the request."""


class BlockNotFound(StoreError):
    """None of the stores routed for a block holds it."""


class StoreUrlError(StoreError):
    """A store URL has an unknown scheme or a malformed part."""


class ImageError(FlistError):
    """A Docker or OCI image archive is malformed or uses something not supported."""


class HubError(FlistError):
    """The hub answered with an error, or could not be reached."""


class MountError(FlistError):
    """The FUSE mount could not be set up or served."""
