"""Errors of zgrid.devnet.

DevnetError
├── DevnetBusy          another devnet runs on this machine, or another command holds this one
├── DevnetNotFound      no devnet was ever started from that directory
├── DevnetStartFailed   a part did not come up (the message names it and its log)
└── ImageBuildFailed    a base root filesystem could not be built (debootstrap, busybox)
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = [
    "DevnetBusy",
    "DevnetError",
    "DevnetNotFound",
    "DevnetStartFailed",
    "ImageBuildFailed",
]


class DevnetError(ZgridError):
    """Root of the devnet package's errors."""


class DevnetBusy(DevnetError):
    """The machine's one devnet is another directory's, or a command is already at work."""


class DevnetNotFound(DevnetError):
    """The directory holds no devnet."""


class DevnetStartFailed(DevnetError):
    """A process of the devnet exited or did not answer in time."""


class ImageBuildFailed(DevnetError):
    """A base image's root filesystem could not be built."""
