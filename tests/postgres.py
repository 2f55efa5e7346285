"""A throwaway PostgreSQL server for tests and benches: its own data directory, port and
socket, removed when it stops.

In a test module (or a package's conftest), import the fixtures so pytest finds them; a
fixture that another uses must be imported too::

    from tests.postgres import postgres_cluster, postgres_database  # noqa: F401

    def test_rows(postgres_database: str) -> None:
        engine = sqlalchemy.create_engine(postgres_database)

``postgres_cluster`` is one server per test module; ``postgres_database`` is the URL of a
fresh database in it for each test, dropped afterwards. Without PostgreSQL installed they
skip, under CI (``CI=true``) they fail. A bench that measures durable writes starts its own
``PostgresCluster(settings={})`` to keep the server's defaults (fsync on).

PostgreSQL refuses to run as root: as root, the server's tools run as the ``postgres``
system user (created by Debian's package) in a directory of its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

import pytest

from tests.conftest import IN_CI
from tests.processes import free_port

# For tests: nothing they write must survive a crash of the machine, so the server skips
# flushing to disk (a commit costs microseconds instead of an fsync).
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
SERVER_USER = "postgres"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_LOG_TAIL = 2000


class PostgresError(RuntimeError):
    """A PostgreSQL tool failed, did not finish in time, or is not installed."""


def postgres_bin() -> Path | None:
    """The bin directory of the newest PostgreSQL installed (Debian's layout), if any."""
    found: list[tuple[int, Path]] = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        if (candidate / "initdb").is_file() and candidate.parent.name.isdigit():
            found.append((int(candidate.parent.name), candidate))
    if found:
        return max(found)[1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _missing_reason() -> str | None:
    if postgres_bin() is None:
        return "needs PostgreSQL (initdb under /usr/lib/postgresql/*/bin or on PATH)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"needs the {SERVER_USER!r} system user to run PostgreSQL as root"
    return None


class PostgresCluster:
    """One PostgreSQL server: ``initdb`` into a fresh directory, ``pg_ctl start`` on a free
    port of 127.0.0.1 (and a Unix socket in that directory), trust authentication for the
    ``postgres`` superuser. ``stop()`` ends it and removes the directory.

    ``parent`` is where the directory is made (the system's temporary directory by default;
    as root every directory above it must be searchable by the ``postgres`` user).
    ``settings`` are server options (``-c name=value``); the default turns durability off.
    ``log``, when given, receives a copy of the server's log at stop.
    """

    def __init__(
        self,
        *,
        parent: Path | None = None,
        settings: Mapping[str, str] = FAST_SETTINGS,
        log: Path | None = None,
        timeout: float = 30,
    ) -> None:
        self.parent = parent
        self.settings = dict(settings)
        self.log_copy = log
        self.timeout = timeout
        self.root: Path | None = None
        self.port = 0
        self.bin = postgres_bin()

    # Paths inside the cluster's directory, valid once started.
    @property
    def data(self) -> Path:
        return self._root() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._root() / "socket"

    @property
    def log(self) -> Path:
        return self._root() / "server.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database."""
        return self.database_url("postgres")

    @property
    def dsn(self) -> str:
        """A libpq connection string for the ``postgres`` database (psycopg.connect)."""
        self._root()
        return f"host={self.host} port={self.port} user={SERVER_USER} dbname=postgres"

    def database_url(self, name: str) -> str:
        self._root()
        return f"postgresql+psycopg://{SERVER_USER}@{self.host}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self.root is not None

    def start(self) -> PostgresCluster:
        if self.root is not None:
            raise PostgresError("the cluster is already started")
        if (reason := _missing_reason()) is not None:
            raise PostgresError(reason)
        self.root = Path(tempfile.mkdtemp(prefix="zgrid-pg-", dir=self.parent))
        try:
            self._prepare_root()
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "--auth=trust",
                f"--username={SERVER_USER}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
                # Without fsync at run time, flushing the new cluster to disk buys nothing.
                *(["--no-sync"] if self.settings.get("fsync") == "off" else []),
            )
            self._start_server()
        except BaseException:
            self._remove()
            raise
        return self

    def stop(self) -> None:
        """End the server (immediately; fast shutdown if that fails; SIGKILL last) and remove
        its directory. Safe to call twice or after a failed start."""
        if self.root is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._stop_server()
        finally:
            self._remove()

    def create_database(self, name: str) -> str:
        """Create database ``name`` (lowercase letters, digits, ``_``); return its URL."""
        self._check_name(name)
        self.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending the sessions still connected to it."""
        self._check_name(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, statement: str) -> None:
        """Run one statement in the ``postgres`` database, outside a transaction."""
        import psycopg  # noqa: PLC0415  # only the tests that use a server need the driver

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as connection:
            connection.execute(statement.encode())

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inside

    def _root(self) -> Path:
        if self.root is None:
            raise PostgresError("the cluster is not started")
        return self.root

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.fullmatch(name):
            raise PostgresError(
                f"bad database name {name!r}: lowercase letters, digits and _ only, at most 63"
            )

    def _prepare_root(self) -> None:
        root = self._root()
        self.socket_dir.mkdir()
        if os.geteuid() != 0:
            return
        # The server's user must reach the directory and own it (initdb makes data/ in it).
        account = pwd.getpwnam(SERVER_USER)
        for directory in (root, self.socket_dir):
            os.chown(directory, account.pw_uid, account.pw_gid)
        root.chmod(0o755)
        for above in root.parents:
            if above.stat().st_mode & 0o001 == 0 and above.stat().st_uid != account.pw_uid:
                raise PostgresError(
                    f"{above} is not searchable by the {SERVER_USER!r} user: "
                    "give the cluster another parent directory"
                )

    def _argv(self, tool: str, *args: str) -> list[str]:
        assert self.bin is not None
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, tool: str, *args: str, timeout: float | None = None) -> str:
        """Run one of the server's tools; raise PostgresError with its output if it fails."""
        limit = self.timeout if timeout is None else timeout
        env = {**os.environ, "LC_ALL": "C.UTF-8", "PGTZ": "UTC"}
        try:
            done = subprocess.run(
                self._argv(tool, *args),
                cwd=self._root(),  # a directory the server's user can enter
                capture_output=True,
                text=True,
                timeout=limit,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(
                f"{tool} did not finish within {limit} s{self._log_tail()}"
            ) from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-_LOG_TAIL:]
            raise PostgresError(
                f"{tool} failed with exit code {done.returncode}: {output}{self._log_tail()}"
            )
        return done.stdout

    def _options(self) -> str:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            **self.settings,
        }
        return " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())

    def _start_server(self) -> None:
        # The port is free when chosen; another process may take it before the server binds
        # it, so a bind failure tries another port.
        for attempt in range(3):
            self.port = free_port()
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    str(int(self.timeout)),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    self._options(),
                    timeout=self.timeout + 5,
                )
                return
            except PostgresError as exc:
                if attempt == 2 or "could not bind" not in str(exc):
                    raise
                self.log.unlink(missing_ok=True)

    def _stop_server(self) -> None:
        for mode in ("immediate", "fast"):
            with contextlib.suppress(PostgresError):
                self._run("pg_ctl", "stop", "-w", "-t", "10", "-m", mode, "-D", str(self.data))
                return
        self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:  # a stale pid file may name a process that is not this server's
            if str(self.data).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        except OSError:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the postmaster leads its backends' group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def _log_tail(self) -> str:
        if self.root is None or not self.log.exists():
            return ""
        try:
            tail = self.log.read_text(errors="replace")[-_LOG_TAIL:].strip()
        except OSError:
            return ""
        return f"\n--- the server's log (tail) ---\n{tail}" if tail else ""

    def _remove(self) -> None:
        root, self.root = self.root, None
        if root is None:
            return
        if self.log_copy is not None and (root / "server.log").exists():
            with contextlib.suppress(OSError):
                self.log_copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / "server.log", self.log_copy)
        shutil.rmtree(root, ignore_errors=True)


def require_postgres() -> None:
    """Skip a test without PostgreSQL on this machine; fail it under CI."""
    reason = _missing_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the test module, removed after its last test."""
    require_postgres()
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_database(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of the module's server, dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    url = postgres_cluster.create_database(name)
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)
