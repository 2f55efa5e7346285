"""The devnet's base images, built on this machine: busybox and a minimal Debian with an
SSH server.

Nothing is downloaded at run time but Debian's packages for debootstrap, and those once:
the Debian root filesystem is built into a cache directory (kept by `devnet down`, so the
next devnet reuses it) and renamed into place only when debootstrap succeeded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from zgrid.devnet.errors import ImageBuildFailed

__all__ = [
    "DEBIAN_PACKAGES",
    "DEBIAN_SUITE",
    "SSHD_FOREGROUND",
    "BaseImage",
    "base_images",
    "build_busybox",
    "build_debian",
    "cache_dir",
    "debian_mirror",
    "debian_root",
]

DEBIAN_SUITE = "bookworm"
# Beside minbase: a machine reachable over SSH, with the tools its user reaches for first.
DEBIAN_PACKAGES = ("iproute2", "iputils-ping", "openssh-server", "openssl", "procps")
# The Debian image's SSH server as a machine's entrypoint: in the foreground, its log on the
# console, with a host key of the machine's own made on its first start (kept on its root
# volume after that). Keys only, without PAM: PAM's session modules cost over a second per
# login under TCG and add nothing to a key login as root.
SSHD_FOREGROUND = "/usr/local/sbin/sshd-foreground"
_SSHD_FOREGROUND = """#!/bin/sh
set -e
mkdir -p /run/sshd
key=/etc/ssh/ssh_host_ed25519_key
[ -s "$key" ] || ssh-keygen -q -t ed25519 -N '' -f "$key"
exec /usr/sbin/sshd -D -e -h "$key" -o UsePAM=no -o PasswordAuthentication=no "$@"
"""
_DEFAULT_MIRROR = "http://deb.debian.org/debian"
_SHELL_TAGS = {"entrypoint": json.dumps(["/bin/sh"]), "cmd": json.dumps([])}
_DEBOOTSTRAP_TIMEOUT = 1800

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BaseImage:
    """An image the devnet publishes under its own twin: what to build and how to run it."""

    name: str
    build: Callable[[Path, Progress], Path]
    tags: dict[str, str] = field(default_factory=lambda: dict(_SHELL_TAGS))


def cache_dir() -> Path:
    """Where built root filesystems are kept between devnets ($XDG_CACHE_HOME/zgrid)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zgrid" / "images"


def build_busybox(work: Path, progress: Progress) -> Path:
    """A root filesystem of busybox-static with every applet linked, built in ``work``."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise ImageBuildFailed("busybox is not installed (Debian package busybox-static)")
    root = work / "busybox-root"
    if root.exists():
        shutil.rmtree(root)
    progress("busybox: linking its applets")
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for directory in ("tmp", "var/tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
        os.chmod(root / directory, 0o1777)
    (root / "var/www").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin/busybox")
    listed = subprocess.run(
        [busybox, "--list-full"], capture_output=True, text=True, check=False, timeout=30
    )
    if listed.returncode != 0:
        raise ImageBuildFailed(f"busybox --list-full failed: {listed.stderr.strip()}")
    for applet in listed.stdout.split():
        target = root / applet
        if target.name == "busybox" or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(root / "bin/busybox", target.parent))
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/hostname").write_text("busybox\n")
    return root


def debian_mirror(
    sources: tuple[Path, ...] = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")),
) -> str:
    """The Debian mirror this machine's apt uses (debootstrap fetches from it)."""
    texts: list[str] = []
    for source in sources:
        paths = sorted(source.glob("*")) if source.is_dir() else [source]
        for path in paths:
            try:
                texts.append(path.read_text(errors="replace"))
            except OSError:
                continue
    for text in texts:
        for line in text.splitlines():
            found = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(https?://\S+?/debian)/?\s", line)
            if found:
                return found.group(1)
        found = re.search(r"^URIs:\s*(https?://\S+?/debian)/?\s*$", text, re.MULTILINE)
        if found:
            return found.group(1)
    return _DEFAULT_MIRROR


def build_debian(work: Path, progress: Progress) -> Path:
    """A minimal Debian root filesystem (debootstrap minbase and DEBIAN_PACKAGES), from the
    cache once built; a second builder on this machine waits for the first."""
    del work  # kept in the cache, not in the devnet's directory
    cached = debian_root()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with _locked(cached.with_name(cached.name + ".lock")):
        if (cached / "etc/debian_version").exists():
            progress(f"debian: cached in {cached}")
        else:
            _debootstrap(cached, progress)
        _make_machine_neutral(cached)  # cheap, and a cached tree gets a changed script
    return cached


def debian_root() -> Path:
    """Where the Debian root filesystem is cached: named after what debootstrap installs,
    so a changed package list builds anew."""
    recipe = json.dumps([DEBIAN_SUITE, DEBIAN_PACKAGES]).encode()
    return cache_dir() / f"debian-{DEBIAN_SUITE}-{hashlib.sha256(recipe).hexdigest()[:8]}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _debootstrap(cached: Path, progress: Progress) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageBuildFailed("debootstrap is not installed (Debian package debootstrap)")
    partial = cached.with_name(cached.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    mirror = debian_mirror()
    progress(f"debian: debootstrap {DEBIAN_SUITE} from {mirror} (once; cached in {cached})")
    argv = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        DEBIAN_SUITE,
        str(partial),
        mirror,
    ]
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        raise ImageBuildFailed(f"cannot run debootstrap: {exc}") from exc
    assert process.stdout is not None
    with process:
        for raw in process.stdout:
            line = raw.rstrip()
            lines.append(line)
            if line.startswith(("I: ", "E: ", "W: ")):
                progress(f"debian: {line[3:]}")
        code = process.wait(timeout=_DEBOOTSTRAP_TIMEOUT)
    if code != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join(lines[-10:])
        raise ImageBuildFailed(f"debootstrap failed with exit {code}:\n{tail}")
    _slim(partial)
    if cached.exists():
        shutil.rmtree(cached)
    partial.rename(cached)


def _make_machine_neutral(root: Path) -> None:
    """No secret of one machine in an image every machine starts from: the host keys the
    openssh-server package made are dropped, and ``sshd-foreground`` makes a machine's own
    on its first start."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    script = root / SSHD_FOREGROUND.lstrip("/")
    if not script.is_file() or script.read_text() != _SSHD_FOREGROUND:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(_SSHD_FOREGROUND)
        script.chmod(0o755)


def _slim(root: Path) -> None:
    """Drop the downloaded packages and the docs: a third of a minbase tree, unused in a
    container (apt's own directories stay, so apt-get works inside)."""
    for directory in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / directory).glob("*"):
            if entry.is_file() and entry.name != "lock":
                entry.unlink()
    for directory in ("usr/share/doc", "usr/share/man", "usr/share/locale"):
        target = root / directory
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()


def base_images() -> list[BaseImage]:
    """The images every devnet publishes, in the order they are built."""
    return [
        BaseImage("busybox", build_busybox),
        BaseImage(
            "debian",
            build_debian,
            tags={"entrypoint": json.dumps(["/bin/bash"]), "cmd": json.dumps([])},
        ),
    ]
