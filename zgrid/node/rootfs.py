"""A container's root filesystem: an overlay whose read-only lower is a mounted flist and
whose writable upper lives on the workload's volume, and what the kernel says is mounted.

The lower is a FUSE mount (fuse.flist). Overlayfs is mounted with index, xino,
redirect_dir and metacopy off: each FUSE mount is a new anonymous device, so anything
that records the lower's identity in the upper (index, origin checks) would refuse the
same upper over the same flist after a remount or a reboot; with them off an upper can
always be put back over its lower.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

from zgrid.node.errors import ProvisionError, SystemCommandError
from zgrid.node.system import run_command

__all__ = [
    "OVERLAY_OPTIONS",
    "MountEntry",
    "is_mount_point",
    "lower_is_dead",
    "mount_overlay",
    "mounts_under",
    "read_mountinfo",
    "unmount",
]

OVERLAY_OPTIONS = ("index=off", "xino=off", "redirect_dir=off", "metacopy=off")
_MOUNTINFO = Path("/proc/self/mountinfo")
_ESCAPE = re.compile(r"\\([0-7]{3})")
# Characters overlayfs's option parser would split on, or the kernel would escape.
_UNSAFE_IN_OPTIONS = re.compile(r"[,:\\\s=]")


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of /proc/self/mountinfo, the fields the node needs."""

    mount_point: Path
    fstype: str
    source: str
    super_options: str

    def super_option(self, name: str) -> str | None:
        """The value of ``name=value`` among the superblock's options (lowerdir ...)."""
        for option in self.super_options.split(","):
            key, _, value = option.partition("=")
            if key == name:
                return value
        return None


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \ooo.
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def read_mountinfo(text: str | None = None) -> list[MountEntry]:
    """Every mount this process sees, in mount order (later mounts stack on earlier ones)."""
    if text is None:
        text = _MOUNTINFO.read_text(errors="surrogateescape")
    entries = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < separator + 3:
            continue
        entries.append(
            MountEntry(
                mount_point=Path(_unescape(fields[4])),
                fstype=fields[separator + 1],
                source=_unescape(fields[separator + 2]),
                super_options=_unescape(fields[separator + 3])
                if len(fields) > separator + 3
                else "",
            )
        )
    return entries


def _entry_at(path: Path, entries: list[MountEntry] | None = None) -> MountEntry | None:
    """The topmost mount on exactly ``path``."""
    wanted = Path(os.path.abspath(path))
    found = None
    for entry in read_mountinfo() if entries is None else entries:
        if entry.mount_point == wanted:
            found = entry
    return found


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted on exactly ``path`` (also a dead FUSE mount, which
    ``os.path.ismount`` cannot stat)."""
    return _entry_at(path) is not None


def mounts_under(prefix: Path) -> list[Path]:
    """Mount points at or below ``prefix``, deepest first (the order to unmount them in)."""
    base = Path(os.path.abspath(prefix))
    found = {
        entry.mount_point
        for entry in read_mountinfo()
        if entry.mount_point == base or base in entry.mount_point.parents
    }
    return sorted(found, key=lambda path: (-len(path.parts), str(path)))


def _option_path(path: Path, what: str) -> str:
    text = os.path.abspath(path)
    if _UNSAFE_IN_OPTIONS.search(text):
        raise ProvisionError(f"the {what} path {text!r} cannot be given to overlayfs")
    return text


async def mount_overlay(lower: Path, volume: Path, target: Path) -> None:
    """Mount an overlay of ``lower`` (read-only) and ``volume``/upper on ``target``.

    Safe to repeat: an overlay already on ``target`` with this lower and upper is left as
    it is; anything else mounted there is an error (never stacked over).
    """
    lowerdir = _option_path(lower, "flist")
    upper, work = volume / "upper", volume / "work"
    upperdir, workdir = _option_path(upper, "volume"), _option_path(work, "volume")
    existing = await asyncio.to_thread(_entry_at, target)
    if existing is not None:
        if (
            existing.fstype == "overlay"
            and existing.super_option("lowerdir") == lowerdir
            and existing.super_option("upperdir") == upperdir
        ):
            return
        raise ProvisionError(
            f"{target} has something else mounted on it already "
            f"({existing.fstype} of {existing.source})"
        )
    try:
        for directory in (upper, work, target):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvisionError(f"cannot prepare the root filesystem: {exc}") from exc
    options = ",".join(
        (f"lowerdir={lowerdir}", f"upperdir={upperdir}", f"workdir={workdir}", *OVERLAY_OPTIONS)
    )
    try:
        await run_command(["mount", "-t", "overlay", "overlay", "-o", options, str(target)])
    except SystemCommandError as exc:
        raise ProvisionError(
            f"cannot mount the container's root filesystem on {target}: {exc.output.strip()}"
        ) from exc


async def unmount(target: Path) -> None:
    """Unmount whatever is on ``target`` (every stacked mount); nothing there is fine.

    Lazy when busy: a process still inside the root filesystem keeps it until it leaves.
    """
    while await asyncio.to_thread(is_mount_point, target):
        try:
            await run_command(["umount", str(target)], timeout=30)
        except SystemCommandError:
            await run_command(["umount", "-l", str(target)], timeout=30)


_DEAD_FUSE = (errno.ENOTCONN, errno.ECONNABORTED)


async def lower_is_dead(target: Path, *, timeout: float = 5.0) -> bool:
    """Whether the overlay on ``target`` sits on a FUSE lower whose process died.

    Such an overlay stays broken after the lower is mounted again (it holds the dead
    mount): unmount it and mount it anew, which means restarting its container. A lower
    that does not answer within ``timeout`` counts as dead too.
    """

    def probe() -> bool:
        try:
            os.listdir(target)
        except OSError as exc:
            return exc.errno in _DEAD_FUSE
        return False

    try:
        return await asyncio.wait_for(asyncio.to_thread(probe), timeout)
    except TimeoutError:
        return True
