"""SET and GET of random binary values (4 KiB, 64 KiB, 512 KiB): zgrid's Zero-DB against redis-server.

Both servers run side by side on 127.0.0.1 with fresh data directories; one client
pipelines 16 requests at a time and the payload bytes moved per second are reported,
with the ratio zgrid/redis. Random bytes are what encrypted flist blocks look like.
Usage: python bench/zdb_binary.py [--megabytes N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hiredis

SIZES = {"4KiB": 4 * 1024, "64KiB": 64 * 1024, "512KiB": 512 * 1024}
PIPELINE = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(request(b"PING"))
                if sock.recv(100).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on port {port} did not answer")


def run(sock: socket.socket, requests: list[bytes]) -> None:
    """Send ``requests`` PIPELINE at a time; read every reply."""
    reader = hiredis.Reader()
    for start in range(0, len(requests), PIPELINE):
        batch = requests[start : start + PIPELINE]
        sock.sendall(b"".join(batch))
        replies = 0
        while replies < len(batch):
            chunk = sock.recv(1 << 20)
            if not chunk:
                sys.exit("the server closed the connection")
            reader.feed(chunk)
            while (reply := reader.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    sys.exit(f"error reply: {reply}")
                replies += 1


def measure(port: int, size: int, total: int) -> dict[str, float]:
    count = max(PIPELINE, total // size)
    values = [os.urandom(size) for _ in range(count)]
    keys = [b"bin-%d-%d" % (size, n) for n in range(count)]
    sets = [request(b"SET", key, value) for key, value in zip(keys, values, strict=True)]
    gets = [request(b"GET", key) for key in keys]
    result: dict[str, float] = {}
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for name, requests in (("SET", sets), ("GET", gets)):
            started = time.perf_counter()
            run(sock, requests)
            elapsed = time.perf_counter() - started
            result[name] = count * size / elapsed / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=32, help="payload per size and command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    options = parser.parse_args()
    zgrid = Path(sys.executable).parent / "zgrid"
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        sys.exit("bench/zdb_binary.py needs redis-server (make install)")
    total = options.megabytes * 1024 * 1024
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for server in ("zgrid", "redis"):
            port = free_port()
            if server == "zgrid":
                argv = [str(zgrid), "zdb", "run", "--data", f"{work}/data", "--index"]
                argv += [f"{work}/index", "--listen", "127.0.0.1", "--port", str(port)]
            else:
                argv = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
                argv += ["--appendonly", "no", "--dir", work]
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_ready(port, process)
                for label, size in SIZES.items():
                    measured = measure(port, size, total)
                    for command, rate in measured.items():
                        results.setdefault(label, {}).setdefault(command, {})[server] = rate
            finally:
                process.terminate()
                process.wait()
    rows = [
        {
            "size": label,
            "command": command,
            "zgrid_mb_s": round(rates["zgrid"], 1),
            "redis_mb_s": round(rates["redis"], 1),
            "ratio": round(rates["zgrid"] / rates["redis"], 2),
        }
        for label, commands in results.items()
        for command, rates in commands.items()
    ]
    if options.json:
        print(json.dumps({"pipeline": PIPELINE, "megabytes": options.megabytes, "results": rows}))
        return
    print(f"\n{'size':<7} {'command':<7} {'zgrid MB/s':>11} {'redis MB/s':>11} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['size']:<7} {row['command']:<7} {row['zgrid_mb_s']:>11,.1f}"
            f" {row['redis_mb_s']:>11,.1f} {row['ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
