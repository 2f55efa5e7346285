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

``--hub-reads`` measures something else: how long hub reads wait while flists are pushed.
It starts a ledger and a hub, makes ``--pushes`` twins, and has each push an flist of
``--inodes`` entries at the same time, while one client reads a published flist in a
loop; it reports the pushes' wall time and the slowest and median read. Run it with
``PYTHONPATH=$PWD`` (it uses the test suite's ledger and hub processes).
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
    parser.add_argument("--hub-reads", action="store_true", help="hub reads during pushes")
    parser.add_argument("--pushes", type=int, default=8, help="concurrent pushes (--hub-reads)")
    parser.add_argument("--inodes", type=int, default=100_000, help="inodes per pushed flist")
    args = parser.parse_args()
    if args.hub_reads:
        return hub_reads(args.pushes, args.inodes, args.json)
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


def hub_reads(pushes: int, inodes: int, as_json: bool) -> int:  # noqa: PLR0915
    # Imported here: only this mode needs the test suite's processes (and PYTHONPATH).
    import asyncio  # noqa: PLC0415
    import stat as stat_module  # noqa: PLC0415
    import statistics  # noqa: PLC0415
    import threading  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    from tests.chain.conftest import ClientFactory, running_ledger  # noqa: PLC0415
    from tests.flist.conftest import running_hub  # noqa: PLC0415
    from zgrid.flist import FlistWriter, Router, open_store  # noqa: PLC0415
    from zgrid.flist.hub import HubClient  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="zgrid-bench-hub-"))
    try:
        flist = work / "wide.fl"
        writer = FlistWriter(flist)
        dir_mode, file_mode = stat_module.S_IFDIR | 0o755, stat_module.S_IFREG | 0o644
        root = writer.add_inode(parent=0, name="/", size=0, uid=0, gid=0, mode=dir_mode)
        parent = root
        for index in range(inodes - 1):
            if index % 100 == 0:
                parent = writer.add_inode(
                    parent=root, name=f"d{index}", size=0, uid=0, gid=0, mode=dir_mode
                )
            else:
                writer.add_inode(
                    parent=parent, name=f"f{index}", size=0, uid=0, gid=0, mode=file_mode
                )
        writer.close()
        with running_ledger(work / "ledger") as ledger, running_hub(work, ledger.url) as hub:
            factory = ClientFactory(ledger.url)
            twins = []
            for _ in range(pushes):
                client = factory()
                twins.append((client.identity, client.create_twin()))
            factory.close()

            def push(identity: Any, twin_id: int, name: str) -> None:
                async def run() -> None:
                    router = Router([(0, 255, open_store(f"dir://{work}/none"))])
                    async with HubClient(
                        hub.url, identity=identity, twin_id=twin_id, timeout=600
                    ) as client:
                        await client.push(flist, name, router)

                asyncio.run(run())

            push(*twins[0], "first.fl")
            stop = threading.Event()
            latencies: list[float] = []

            def read() -> None:
                with httpx.Client(base_url=hub.url, timeout=600) as http:
                    while not stop.is_set():
                        started = time.monotonic()
                        http.get(f"/flists/{twins[0][1]}/first.fl").raise_for_status()
                        latencies.append(time.monotonic() - started)
                        time.sleep(0.05)

            reader = threading.Thread(target=read)
            reader.start()
            threads = [
                threading.Thread(target=push, args=(identity, twin_id, "wide.fl"))
                for identity, twin_id in twins
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - started
            stop.set()
            reader.join()
        result = {
            "pushes": pushes,
            "inodes": inodes,
            "push_seconds": round(wall, 2),
            "reads": len(latencies),
            "slowest_read_seconds": round(max(latencies), 3),
            "median_read_seconds": round(statistics.median(latencies), 3),
        }
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"{pushes} pushes of {inodes} inodes: {wall:.1f} s; {len(latencies)} reads,"
                f" slowest {result['slowest_read_seconds']} s,"
                f" median {result['median_read_seconds']} s"
            )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
