"""flist benchmark: pack speed against `tar -c | zstd`, and time to first byte through a
cold FUSE mount against a full unpack.

It generates a tree of mixed files (default 500 MB: a few large binaries, medium files,
thousands of small text files, some repeated content) in a temporary directory, then in
one run:

* pack: ``zgrid flist pack TREE -o X.fl --store dir://STORE`` against
  ``tar -cf - -C TREE . | zstd -q -o X.tar.zst`` (zstd's default level, one thread), both
  reading the same tree from the page cache. MB/s = tree bytes / wall time; the ratio is
  ours / tar+zstd.
* first byte: the store is served over HTTP on loopback (``python -m http.server``), the
  cache is empty; the clock runs from starting ``zgrid flist mount`` until the first byte
  of the tree's largest file is read through the mount. That is set against
  ``zgrid flist unpack`` of the whole flist from the same HTTP store (what a node would do
  without the lazy mount).

Run it as root from the project root: ``.venv/bin/python bench/flist.py`` (``--size-mb``,
``--json``). It exits 0 whenever it ran, and non-zero only when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

ZGRID = str(Path(sys.executable).parent / "zgrid")
console = Console(stderr=True, highlight=False)


def generate_tree(root: Path, size_mb: int, seed: int = 7) -> int:
    """A mixed tree of about ``size_mb`` MB; returns its exact byte count."""
    rng = random.Random(seed)
    budget = size_mb * 1_000_000
    total = 0
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(2000)
    ]

    def text(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += b" ".join(rng.choices(words, k=16)) + b"\n"
        return bytes(out[:n])

    plan = [
        ("large", 0.40, (20_000_000, 60_000_000), "binary"),
        ("medium", 0.30, (200_000, 4_000_000), "mixed"),
        ("small", 0.20, (500, 64_000), "text"),
        ("repeat", 0.10, (1_000_000, 1_000_000), "repeat"),
    ]
    repeated = os.urandom(1_000_000)
    for name, share, (low, high), kind in plan:
        part_budget = int(budget * share)
        used = 0
        index = 0
        while used < part_budget:
            size = min(rng.randint(low, high), part_budget - used)
            folder = root / name / f"d{index // 200:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "binary":
                data = os.urandom(size)
            elif kind == "text":
                data = text(size)
            elif kind == "repeat":
                data = repeated[:size]
            else:
                data = text(size // 2) + os.urandom(size - size // 2)
            (folder / f"f{index:05d}").write_bytes(data)
            used += size
            index += 1
        total += used
    return total


def timed(argv: list[str], **kwargs: Any) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def first_byte(flist: Path, url: str, work: Path, target: str) -> tuple[float, float]:
    """(seconds to mount, seconds from start to the first byte of ``target``)."""
    mountpoint, cache = work / "mnt", work / "cache-mount"
    mountpoint.mkdir()
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            ZGRID,
            "flist",
            "mount",
            str(flist),
            str(mountpoint),
            "--cache",
            str(cache),
            "--store",
            url,
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        while not os.path.ismount(mountpoint):
            if process.poll() is not None:
                raise RuntimeError("the mount exited")
            time.sleep(0.002)
        mounted = time.perf_counter() - start
        with open(mountpoint / target, "rb", buffering=0) as handle:
            handle.read(1)
        return mounted, time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def serve_store(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m http.server`` over a directory store: the plain HTTP store a node reads."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(store),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="size of the generated tree")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    for tool in ("tar", "zstd", "fusermount3"):
        if shutil.which(tool) is None:
            console.print(f"needs {tool} on PATH")
            return 2
    work = Path(tempfile.mkdtemp(prefix="zgrid-bench-flist-"))
    server = None
    try:
        console.print(f"generating a {args.size_mb} MB tree in {work}")
        tree = work / "tree"
        size = generate_tree(tree, args.size_mb)
        files = sum(1 for p in tree.rglob("*") if p.is_file())
        largest = max((p for p in tree.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        subprocess.run(["tar", "-cf", "/dev/null", "-C", str(tree), "."], check=True)  # warm cache

        console.print("packing with zgrid")
        flist = work / "tree.fl"
        ours = timed(
            [
                ZGRID,
                "flist",
                "pack",
                str(tree),
                "-o",
                str(flist),
                "--store",
                f"dir://{work}/store",
                "--json",
            ],
            stdout=subprocess.DEVNULL,
        )
        console.print("packing with tar | zstd")
        peer = timed(["sh", "-c", f"tar -cf - -C {tree} . | zstd -q -o {work}/tree.tar.zst"])
        store_bytes = sum(p.stat().st_size for p in (work / "store").rglob("*") if p.is_file())
        zstd_bytes = (work / "tree.tar.zst").stat().st_size

        server, url = serve_store(work / "store")
        console.print("first byte through a cold mount")
        target = str(largest.relative_to(tree))
        mounted, ttfb = first_byte(flist, url, work, target)
        console.print("full unpack from the same store")
        unpack = timed(
            [ZGRID, "flist", "unpack", str(flist), str(work / "unpacked"), "--store", url],
            stdout=subprocess.DEVNULL,
        )
        result = {
            "tree_bytes": size,
            "files": files,
            "pack_seconds": round(ours, 2),
            "pack_mb_s": round(size / ours / 1e6, 1),
            "tar_zstd_seconds": round(peer, 2),
            "tar_zstd_mb_s": round(size / peer / 1e6, 1),
            "pack_ratio": round(peer / ours, 2),
            "store_bytes": store_bytes,
            "tar_zstd_bytes": zstd_bytes,
            "mount_seconds": round(mounted, 3),
            "first_byte_seconds": round(ttfb, 3),
            "full_unpack_seconds": round(unpack, 2),
            "first_byte_speedup": round(unpack / ttfb, 1),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"tree: {size / 1e6:.0f} MB in {files} files")
            print(
                f"pack: zgrid {result['pack_mb_s']} MB/s, tar|zstd {result['tar_zstd_mb_s']} MB/s,"
                f" ratio {result['pack_ratio']} (store {store_bytes / 1e6:.0f} MB,"
                f" tar.zst {zstd_bytes / 1e6:.0f} MB)"
            )
            print(
                f"first byte through a cold mount: {ttfb:.3f} s (mounted after {mounted:.3f} s);"
                f" full unpack: {unpack:.2f} s; {result['first_byte_speedup']}x sooner"
            )
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
