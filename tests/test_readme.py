"""The README's "Using it" lines, run in order in a fresh shell as a new user runs them.

Each line runs in bash with the working directory and exported variables the lines
before it left, from a fresh HOME (so a fresh ``~/.zgrid``) in a directory shaped like
the repository (``.venv`` and ``examples/``). Lines marked "runs in the foreground"
are servers: they start in the background, on free ports (the only change made to what
the user types), and are stopped at the end. The first line that fails fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FOREGROUND = "runs in the foreground"
PORTS = ("8700", "8780", "9900")
LINE_TIMEOUT = 60  # the ledger's, the hub's and Zero-DB's in the README

# README lines (by prefix) that need a change another part of the work is making. Each
# is skipped with its reason until that change is merged; then delete its entry here.
PENDING: dict[str, str] = {}


def readme_lines(text: str) -> list[str]:
    """The commands of every ``sh`` block of the "Using it" section, in order."""
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        pending = ""
        for raw in block.splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


@dataclass
class Shell:
    """A user's shell, one line at a time: what ``cd`` and ``export`` did carries over."""

    cwd: Path
    env: dict[str, str]
    state: Path
    ports: dict[str, str]
    servers: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def rewrite(self, line: str) -> str:
        return re.sub(r"\b(" + "|".join(PORTS) + r")\b", lambda m: self.ports[m.group(1)], line)

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        cwd_file, env_file = self.state / "cwd", self.state / "env"
        script = (
            f"set -o pipefail\n{line}\nstatus=$?\n"
            f'pwd > "{cwd_file}"\nenv -0 > "{env_file}"\nexit $status\n'
        )
        try:
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=LINE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"README line still running after {LINE_TIMEOUT} s (a server not marked "
                f"{FOREGROUND!r}?): {line}"
            )
        if result.returncode == 0:
            self.cwd = Path(cwd_file.read_text().strip())
            variables = env_file.read_bytes().decode().split("\0")
            self.env = dict(item.split("=", 1) for item in variables if "=" in item)
            for name in ("_", "PWD", "OLDPWD", "SHLVL"):
                self.env.pop(name, None)
        return result

    def start(self, line: str) -> None:
        log = self.state / f"server-{len(self.servers)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["bash", "-c", line],
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((line, process, log))
        ports = [int(port) for port in self.ports.values() if re.search(rf"\b{port}\b", line)]
        mounts_before = _mounts_under(self.cwd)
        deadline = time.monotonic() + 30
        while not (
            any(_answers(port) for port in ports)
            if ports
            else _mounts_under(self.cwd) - mounts_before
        ):
            if process.poll() is not None:
                pytest.fail(
                    f"README server line exited with {process.returncode}: {line}\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"README server line did not come up in 30 s: {line}\n{log.read_text()}"
                )
            time.sleep(0.05)

    def check_servers(self) -> None:
        for line, process, log in self.servers:
            if process.poll() is not None:
                pytest.fail(
                    f"README server exited with {process.returncode}: {line}\n{log.read_text()}"
                )

    def stop(self) -> None:
        for _line, process, _log in reversed(self.servers):  # the mount before the hub and ledger
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the user would
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        for mountpoint in _mounts_under(self.cwd):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)


def _answers(port: int) -> bool:
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            continue
    return False


def _mounts_under(directory: Path) -> set[str]:
    prefix = str(directory.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = {line.split()[1] for line in mounts}
    return {point for point in points if point.startswith(prefix + "/")}


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "examples", repository / "examples")
    (tmp_path / "home").mkdir()
    (tmp_path / "state").mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ZGRID_") and key not in ("PWD", "OLDPWD", "VIRTUAL_ENV")
    }
    # PYTHONPATH: the zgrid of this checkout, as every test imports it.
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    ports = {port: str(free_port()) for port in PORTS}
    started = Shell(cwd=repository, env=env, state=tmp_path / "state", ports=ports)
    try:
        yield started
    finally:
        started.stop()


def test_readme_lines_are_found() -> None:
    lines = readme_lines(README.read_text(encoding="utf-8"))
    assert lines[0].startswith("export PATH=")
    assert sum(FOREGROUND in line for line in lines) == 4  # ledger, zdb, mount, hub
    for prefix in PENDING:
        assert any(line.startswith(prefix) for line in lines), f"PENDING {prefix!r} is stale"
    assert not [line for line in lines if "185.69." in line], "farm IPs: documentation ranges only"


def test_readme_runs_as_written(shell: Shell) -> None:
    require_root()  # the flist mount line: FUSE as root
    for tool in ("redis-cli", "busybox", "fusermount3"):
        require_tool(tool)
    if not Path("/dev/fuse").exists():
        pytest.fail("the flist mount line needs /dev/fuse")
    skipped: list[str] = []
    for line in readme_lines(README.read_text(encoding="utf-8")):
        reason = next((why for prefix, why in PENDING.items() if line.startswith(prefix)), None)
        if reason is not None:
            skipped.append(f"{line}  ({reason})")
            continue
        shell.check_servers()
        command = shell.rewrite(line)
        if FOREGROUND in line:
            shell.start(command)
            continue
        result = shell.run(command)
        if result.returncode != 0:
            pytest.fail(
                f"README line failed with exit {result.returncode}: {line}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
    shell.check_servers()
    for line in skipped:
        warnings.warn(f"README line not run yet: {line}", stacklevel=1)
