"""The devnet's parts that need no devnet: its state file, lock and machine claim, its
detached processes, and its base images' sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from zgrid.devnet import DevnetBusy, DevnetError, DevnetNotFound
from zgrid.devnet.images import build_busybox, build_debian, debian_mirror, debian_root
from zgrid.devnet.layout import DevnetState, Layout
from zgrid.devnet.processes import Daemon, start_time


def _state() -> DevnetState:
    return DevnetState(prefix="10.200.3", bridge="zgdabc", nodes=2, block_time=1.0)


def test_the_state_file_round_trips_and_bad_ones_are_named(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "d")
    with pytest.raises(DevnetNotFound, match="zgrid devnet up"):
        layout.load()
    layout.save(_state())
    assert layout.load() == _state()
    assert layout.load().ledger_url == "http://10.200.3.1:8700"
    assert layout.load().node_address(2) == "10.200.3.3"
    for bad, why in (
        ({**json.loads(layout.state_file.read_text()), "prefix": "192.168.1"}, "bad prefix"),
        ({**json.loads(layout.state_file.read_text()), "nodes": 0}, "bad node count"),
        ({"version": 9}, "not a devnet state file"),
    ):
        layout.state_file.write_text(json.dumps(bad))
        with pytest.raises(DevnetError, match=why):
            layout.load()
    layout.state_file.write_text("{")
    with pytest.raises(DevnetError, match="not JSON"):
        layout.load()


def test_one_command_at_a_time_holds_the_lock(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "d")
    with layout.locked(), pytest.raises(DevnetBusy, match="at work"), Layout(layout.root).locked():
        pass
    with layout.locked():  # released once the first is done
        pass


def test_the_machine_runs_one_devnet_at_a_time(tmp_path: Path) -> None:
    registry = tmp_path / "run" / "devnet"
    first, second = Layout(tmp_path / "a"), Layout(tmp_path / "b")
    first.save(_state())
    first.claim_machine(registry)
    first.claim_machine(registry)  # its own claim again is fine
    with pytest.raises(DevnetBusy, match=f"down --dir {first.root}"):
        second.claim_machine(registry)
    second.release_machine(registry)  # not its claim: nothing changes
    assert registry.read_text().strip() == str(first.root)
    first.release_machine(registry)
    second.claim_machine(registry)
    assert registry.read_text().strip() == str(second.root)


def test_a_detached_process_is_found_again_by_its_pid_file_and_stopped(tmp_path: Path) -> None:
    daemon = Daemon("sleeper", tmp_path / "run" / "s.pid", tmp_path / "logs" / "s.log")
    assert not daemon.running()
    code = "import signal, time; print('up', flush=True); time.sleep(60)"
    pid = daemon.start([sys.executable, "-c", code])
    daemon.wait_until(lambda: "up" in daemon.log.read_text(), timeout=20)
    again = Daemon("sleeper", daemon.pid_file, daemon.log)  # as another command finds it
    assert again.pid() == pid
    assert os.getsid(pid) == pid  # its own session: it outlives the command that started it
    assert again.stop(timeout=10)
    assert start_time(pid) is None
    assert not again.running() and not daemon.pid_file.exists()
    assert not again.stop()


def test_a_pid_file_naming_a_process_that_started_later_is_not_ours(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        daemon = Daemon("ledger", tmp_path / "l.pid", tmp_path / "l.log")
        started = start_time(other.pid)
        assert started is not None
        daemon.pid_file.write_text(f"{other.pid} {started - 1}\n")  # the pid, reused since
        assert daemon.pid() is None
        assert not daemon.stop()
        assert other.poll() is None  # the stranger was left alone
    finally:
        other.kill()
        other.wait()


def test_a_process_that_exits_at_once_is_reported_with_its_log(tmp_path: Path) -> None:
    daemon = Daemon("hub", tmp_path / "h.pid", tmp_path / "h.log")
    daemon.start([sys.executable, "-c", "import sys; print('address in use'); sys.exit(3)"])
    with pytest.raises(DevnetError, match=r"(?s)the hub exited before.*address in use"):
        daemon.wait_until(lambda: False, timeout=20)


def test_the_mirror_is_the_one_apt_uses(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list"
    sources.write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://mirror.example/debian/ bookworm main\n"
    )
    assert debian_mirror((sources,)) == "http://mirror.example/debian"
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm\n"
    )
    assert debian_mirror((tmp_path / "missing", parts)) == "http://deb822.example/debian"
    assert debian_mirror((tmp_path / "missing",)) == "http://deb.debian.org/debian"


def test_a_built_debian_root_is_taken_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = debian_root()
    assert cached.parent == tmp_path / "cache" / "zgrid" / "images"
    (cached / "etc").mkdir(parents=True)
    (cached / "etc" / "debian_version").write_text("12.0\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no debootstrap may run
    said: list[str] = []
    started = time.monotonic()
    assert build_debian(tmp_path, said.append) == cached
    assert time.monotonic() - started < 5
    assert said == [f"debian: cached in {cached}"]


def test_the_busybox_root_has_every_applet(tmp_path: Path) -> None:
    require_tool("busybox")
    root = build_busybox(tmp_path, lambda _: None)
    assert (root / "bin" / "busybox").is_file()
    for applet in ("bin/sh", "usr/bin/nc", "usr/sbin/httpd", "usr/bin/tr"):
        assert (root / applet).is_symlink(), applet
        assert (root / applet).resolve() == (root / "bin" / "busybox").resolve()
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    shown = subprocess.run(
        [str(root / "bin" / "sh"), "-c", "echo ok"], capture_output=True, text=True, check=False
    )
    assert shown.stdout.strip() == "ok"
