"""The README's shell blocks, run in order in a fresh shell as a new user runs them.

Every ```` ```sh ```` block of the README is a list of lines a user pastes; other fences
(plain ```` ``` ````, ```` ```text ````) are not run. Each line runs in bash with the
working directory and exported variables the lines before it left, from a fresh HOME,
in a directory shaped like the repository (``.venv`` and ``examples/``). Lines marked
"runs in the foreground" are servers: they start in the background and are stopped at
the end. The only changes made to what the user types: the fixed ports become free ports,
and the node's data directory moves under the test's own directory.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FOREGROUND = "runs in the foreground"
PORTS = ("8700", "8780", "9900")
NODE_DATA = "/var/lib/zgrid/node"
LINE_TIMEOUT = 90  # a deploy, or a server's start


@dataclass(frozen=True)
class Line:
    section: str  # the "## " heading it is under
    text: str


def readme_lines(text: str) -> list[Line]:
    """The commands of every ``sh`` block, in order, with the section each is in."""
    lines: list[Line] = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title = section.split("\n", 1)[0].strip()
        for block in re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
            pending = ""
            for raw in block.splitlines():
                line = pending + raw.strip()
                if line.endswith("\\"):
                    pending = line[:-1] + " "
                    continue
                pending = ""
                if line and not line.startswith("#"):
                    lines.append(Line(title, line))
    return lines


@dataclass
class Shell:
    """A user's shell, one line at a time: what ``cd`` and ``export`` did carries over.

    ``wrap`` turns a command into the one that runs it (e.g. inside another machine's
    network namespace); by default it runs here.
    """

    cwd: Path
    env: dict[str, str]
    state: Path
    ports: dict[str, str]
    node_data: Path
    wrap: Callable[[Sequence[str]], list[str]] = list
    servers: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def rewrite(self, line: str) -> str:
        line = re.sub(r"\b(" + "|".join(PORTS) + r")\b", lambda m: self.ports[m.group(1)], line)
        return line.replace(NODE_DATA, str(self.node_data))

    def _script(self, line: str) -> str:
        """``line`` with the shell variables (exported or not) earlier lines set."""
        return f'set -o pipefail\n[ -f "{self.state / "vars"}" ] && . "{self.state / "vars"}"\n{line}\n'

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        cwd_file, env_file, variables = self.state / "cwd", self.state / "env", self.state / "vars"
        baseline = " ".join(_bash_variables())
        script = (
            f"{self._script(line)}status=$?\n"
            f'pwd > "{cwd_file}"\nenv -0 > "{env_file}"\n'
            # The variables this shell set itself (`web=$(...)`), for the lines after it.
            f'for name in $(compgen -v); do case " {baseline} " in *" $name "*) ;; '
            f'*) declare -p "$name" 2>/dev/null;; esac; done > "{variables}.new"\n'
            "exit $status\n"
        )
        try:
            result = subprocess.run(
                self.wrap(["bash", "-c", script]),
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
            Path(f"{variables}.new").replace(variables)
            self.cwd = Path(cwd_file.read_text().strip())
            exported = env_file.read_bytes().decode().split("\0")
            self.env = dict(item.split("=", 1) for item in exported if "=" in item)
            for name in ("_", "PWD", "OLDPWD", "SHLVL"):
                self.env.pop(name, None)
        return result

    def start(self, line: str) -> None:
        log = self.state / f"server-{len(self.servers)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                self.wrap(["bash", "-c", self._script(line)]),
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((line, process, log))
        ready = self._readiness(line, log)
        deadline = time.monotonic() + 60
        while not ready():
            if process.poll() is not None:
                pytest.fail(
                    f"README server line exited with {process.returncode}: {line}\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"README server line did not come up in 60 s: {line}\n{log.read_text()}"
                )
            time.sleep(0.05)

    def _readiness(self, line: str, log: Path) -> Callable[[], bool]:
        if "zgrid node run" in line:  # a node is up once it follows the ledger
            return lambda: "follows" in log.read_text(errors="replace")
        ports = [int(port) for port in self.ports.values() if re.search(rf"\b{port}\b", line)]
        if ports:
            return lambda: any(_answers(port) for port in ports)
        mounts_before = mounts_under(self.cwd)
        return lambda: bool(mounts_under(self.cwd) - mounts_before)

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
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        for mountpoint in mounts_under(self.cwd):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)


@functools.cache
def _bash_variables() -> tuple[str, ...]:
    """The variables a fresh bash has before any line: not carried between lines."""
    done = subprocess.run(
        ["bash", "-c", "compgen -v"], capture_output=True, text=True, check=True, env={}
    )
    return (*done.stdout.split(), "name", "status", "PIPESTATUS", "BASH_COMMAND")


def _answers(port: int) -> bool:
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            continue
    return False


def mounts_under(directory: Path) -> set[str]:
    prefix = str(directory.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = {line.split()[1] for line in mounts}
    return {point for point in points if point.startswith(prefix + "/")}


def new_shell(tmp_path: Path, **env: str) -> Shell:
    """A fresh user's shell in a copy of the repository's shape under ``tmp_path``."""
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "examples", repository / "examples")
    (tmp_path / "home").mkdir()
    (tmp_path / "state").mkdir()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ZGRID_") and key not in ("PWD", "OLDPWD", "VIRTUAL_ENV")
    }
    # PYTHONPATH: the zgrid of this checkout, as every test imports it.
    environment.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    environment.update(env)
    chosen: set[int] = set()
    while len(chosen) < len(PORTS):  # distinct: two servers never get the same one
        chosen.add(free_port())
    ports = dict(zip(PORTS, map(str, sorted(chosen)), strict=True))
    return Shell(
        cwd=repository,
        env=environment,
        state=tmp_path / "state",
        ports=ports,
        node_data=tmp_path / "node",
    )
