"""RuncRuntime against real runc on a busybox root: output, exits and restarts, OOM kills,
cgroup limits, isolation, network namespaces, pause, daemon crashes and reboots, stop."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.node.runtime.conftest import run, runc_ids, scope_cgroups, wait_for, wait_until
from zgrid.node.errors import RuntimeFailure
from zgrid.node.naming import unique_name
from zgrid.node.runtime import BindMount, ContainerSpec, RuncRuntime
from zgrid.node.runtime.bundle import PIDS_LIMIT

MIB = 1024 * 1024


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def shims_of(directory: Path) -> list[int]:
    """Live supervisor processes of one container dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = b"zgrid.node.runtime.shim" in cmdline and str(directory).encode() in cmdline
        if ours and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def log_of(runtime: RuncRuntime, container_id: str) -> str:
    path = runtime.containers_dir / container_id / "output.log"
    return path.read_text() if path.exists() else ""


def test_output_reaches_the_log_and_start_is_idempotent(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(
        id="web",
        rootfs=rootfs,
        args=("sh", "-c", "echo hello $GREETING; echo oops >&2; exec sleep 1000"),
        env=(("GREETING", "world"),),
    )
    started = time.perf_counter()
    status = run(runtime.start(spec))
    elapsed = time.perf_counter() - started
    assert status.state == "running"
    assert status.pid is not None and alive(status.pid)
    assert elapsed < 1.0, f"start took {elapsed:.3f} s"
    wait_until(lambda: "oops" in log_of(runtime, "web"))
    assert "hello world\n" in log_of(runtime, "web")

    again = run(runtime.start(spec))
    assert (again.state, again.pid) == ("running", status.pid)

    changed = dataclasses.replace(spec, env=(("GREETING", "you"),))
    moved = run(runtime.start(changed))
    assert moved.state == "running" and moved.pid != status.pid
    assert not alive(status.pid)
    assert runc_ids(runtime) == ["web"]
    assert len(shims_of(runtime.containers_dir / "web")) == 1
    wait_until(lambda: "hello you" in log_of(runtime, "web"))


def test_an_exit_is_recorded_and_restarted(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(id="boom", rootfs=rootfs, args=("sh", "-c", "echo boom; exit 3"))
    run(runtime.start(spec))
    status = wait_for(runtime, "boom", lambda s: s.restarts >= 1 and len(s.exits) >= 1)
    first = status.exits[0]
    assert (first.code, first.signal, first.oom_killed) == (3, None, False)
    assert "boom" in first.output_tail
    assert first.at <= time.time()


def test_no_restart_when_the_spec_says_so(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(id="once", rootfs=rootfs, args=("sh", "-c", "exit 0"), restart=False)
    run(runtime.start(spec))
    status = wait_for(runtime, "once", lambda s: s.state == "stopped")
    assert [e.code for e in status.exits] == [0]
    assert status.restarts == 0
    assert runc_ids(runtime) == []
    assert run(runtime.containers()) == ["once"]


def test_an_oom_kill_of_a_child_is_reported_while_init_runs(
    runtime: RuncRuntime, rootfs: Path
) -> None:
    spec = ContainerSpec(
        id="hog",
        rootfs=rootfs,
        memory=64 * MIB,
        args=(
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=200M count=1; echo dd ended $?; exec sleep 1000",
        ),
    )
    pid = run(runtime.start(spec)).pid
    # Reaching the limit and the OOM kill take longer on a machine busy with other work.
    status = wait_for(runtime, "hog", lambda s: s.oom_kills >= 1, timeout=30)
    assert status.state == "running" and status.pid == pid
    assert status.exits == ()
    wait_until(lambda: "dd ended 137" in log_of(runtime, "hog"))


def test_an_oom_kill_of_init_marks_its_exit(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(
        id="hog",
        rootfs=rootfs,
        memory=64 * MIB,
        args=("dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"),
        restart=False,
    )
    run(runtime.start(spec))
    status = wait_for(runtime, "hog", lambda s: s.state == "stopped", timeout=30)
    (exit_,) = status.exits
    assert (exit_.code, exit_.signal, exit_.oom_killed) == (128 + 9, 9, True)
    assert status.oom_kills == 1


def test_cpu_and_memory_limits_are_in_the_cgroup(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(
        id="limited", rootfs=rootfs, cpu=2, memory=100 * MIB, args=("sleep", "1000")
    )
    run(runtime.start(spec))
    memory = runtime._memory_cgroup("limited")
    assert memory is not None
    cgroups = {path.parent.parent.name: path for path in runtime._cgroup_dirs("limited")}
    assert (cgroups["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "200000"
    assert (cgroups["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(100 * MIB)
    assert (memory / "memory.memsw.limit_in_bytes").read_text().strip() == str(100 * MIB)
    assert (cgroups["pids"] / "pids.max").read_text().strip() == str(PIDS_LIMIT)


def test_a_container_sees_only_its_own_processes(runtime: RuncRuntime, rootfs: Path) -> None:
    other = ContainerSpec(id="other", rootfs=rootfs, args=("sleep", "777"))
    run(runtime.start(other))
    spec = ContainerSpec(
        id="looker",
        rootfs=rootfs,
        hostname="looker",
        args=("sh", "-c", "hostname; ps -o pid,args; ls /proc; echo listed; exec sleep 1000"),
    )
    run(runtime.start(spec))
    wait_until(lambda: "listed" in log_of(runtime, "looker"))
    output = log_of(runtime, "looker")
    assert output.splitlines()[0] == "looker"
    assert "777" not in output and "pytest" not in output
    pids = [line for line in output.splitlines() if line.isdigit()]
    assert "1" in pids and len(pids) <= 3  # sh, ps or ls, nothing else


def test_joining_a_network_namespace(runtime: RuncRuntime, rootfs: Path, tmp_path: Path) -> None:
    ip = require_tool("ip")
    name = unique_name("zgt", str(tmp_path))
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        subprocess.run([ip, "-n", name, "addr", "add", "192.0.2.77/32", "dev", "lo"], check=True)
        probe = ("sh", "-c", "ip addr show lo; echo listed; exec sleep 1000")
        joined = ContainerSpec(
            id="joined", rootfs=rootfs, netns=Path("/var/run/netns") / name, args=probe
        )
        own = ContainerSpec(id="own", rootfs=rootfs, args=probe)
        run(runtime.start(joined))
        run(runtime.start(own))
        wait_until(lambda: "listed" in log_of(runtime, "joined"))
        wait_until(lambda: "listed" in log_of(runtime, "own"))
        assert "192.0.2.77" in log_of(runtime, "joined")
        assert "192.0.2.77" not in log_of(runtime, "own")
        assert "127.0.0.1" in log_of(runtime, "own")  # a new netns: lo only, up
        run(runtime.stop("joined"))
    finally:
        subprocess.run([ip, "netns", "delete", name], check=False)


def test_pause_freezes_and_resume_thaws(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(
        id="ticker", rootfs=rootfs, args=("sh", "-c", "while true; do echo tick; sleep 0.05; done")
    )
    run(runtime.start(spec))
    wait_until(lambda: "tick" in log_of(runtime, "ticker"))
    run(runtime.pause("ticker"))
    run(runtime.pause("ticker"))  # again: nothing to do
    assert run(runtime.status("ticker")).state == "paused"
    freezer = next(p for p in runtime._cgroup_dirs("ticker") if p.parent.parent.name == "freezer")
    assert (freezer / "freezer.state").read_text().strip() == "FROZEN"
    frozen = len(log_of(runtime, "ticker"))
    time.sleep(0.3)
    assert len(log_of(runtime, "ticker")) == frozen
    run(runtime.resume("ticker"))
    assert run(runtime.status("ticker")).state == "running"
    wait_until(lambda: len(log_of(runtime, "ticker")) > frozen)
    run(runtime.pause("ticker"))
    pid = run(runtime.status("ticker")).pid
    assert pid is not None
    run(runtime.stop("ticker"))  # a paused container stops too
    assert not alive(pid)


DAEMON = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from zgrid.node.runtime import ContainerSpec, RuncRuntime

    async def main() -> None:
        runtime = RuncRuntime(Path(sys.argv[1]), scope=sys.argv[2])
        spec = ContainerSpec(id="survivor", rootfs=Path(sys.argv[3]), args=("sleep", "1000"))
        status = await runtime.start(spec)
        print(status.pid, flush=True)
        time.sleep(1000)

    asyncio.run(main())
    """
)


def test_the_container_survives_a_killed_daemon(
    make_runtime: Callable[[], RuncRuntime], rootfs: Path
) -> None:
    runtime = make_runtime()
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(runtime.root), runtime.scope, str(rootfs)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        assert daemon.stdout is not None
        pid = int(daemon.stdout.readline())
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    directory = runtime.containers_dir / "survivor"
    (shim,) = shims_of(directory)
    assert Path(f"/proc/{shim}/stat").read_text().rsplit(")", 1)[1].split()[1] != str(daemon.pid)
    assert alive(pid)

    restarted = make_runtime()
    assert run(restarted.recover()) == ["survivor"]
    status = run(restarted.status("survivor"))
    assert (status.state, status.pid) == ("running", pid)
    spec = status.spec
    assert spec is not None
    assert run(restarted.start(spec)).pid == pid  # nothing duplicated
    assert shims_of(directory) == [shim]


def test_a_reboot_is_cleaned_up_and_started_again(
    make_runtime: Callable[[], RuncRuntime], rootfs: Path
) -> None:
    runtime = make_runtime()
    spec = ContainerSpec(id="phoenix", rootfs=rootfs, args=("sh", "-c", "echo up; exec sleep 1000"))
    pid = run(runtime.start(spec)).pid
    assert pid is not None
    directory = runtime.containers_dir / "phoenix"
    (shim,) = shims_of(directory)
    os.kill(shim, signal.SIGKILL)  # every process of the node dies
    pids = next(p for p in runtime._cgroup_dirs("phoenix") if p.parent.parent.name == "pids")
    for member in (pids / "cgroup.procs").read_text().split():
        os.kill(int(member), signal.SIGKILL)
    wait_until(lambda: not alive(pid) and not alive(shim))

    rebooted = make_runtime()
    assert run(rebooted.recover()) == []
    assert runc_ids(rebooted) == []
    assert scope_cgroups(rebooted) == []
    assert run(rebooted.status("phoenix")).state == "stopped"

    status = run(rebooted.start(spec))
    assert status.state == "running" and status.pid != pid
    assert runc_ids(rebooted) == ["phoenix"]
    assert len(shims_of(directory)) == 1
    assert run(rebooted.containers()) == ["phoenix"]


def test_recover_removes_half_made_containers(
    make_runtime: Callable[[], RuncRuntime], rootfs: Path
) -> None:
    runtime = make_runtime()
    half = runtime.containers_dir / "half"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    assert run(runtime.recover()) == []
    assert not half.exists()
    assert run(runtime.containers()) == []


def test_stop_leaves_nothing(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(
        id="gone", rootfs=rootfs, args=("sh", "-c", "sleep 1000 & exec sleep 1000")
    )
    pid = run(runtime.start(spec)).pid
    assert pid is not None
    directory = runtime.containers_dir / "gone"
    (shim,) = shims_of(directory)
    pids = next(p for p in runtime._cgroup_dirs("gone") if p.parent.parent.name == "pids")
    wait_until(lambda: len((pids / "cgroup.procs").read_text().split()) == 2)
    members = [int(m) for m in (pids / "cgroup.procs").read_text().split()]
    run(runtime.stop("gone"))
    run(runtime.stop("gone"))  # absent is fine
    assert not any(alive(p) for p in (shim, *members))
    assert runc_ids(runtime) == []
    assert scope_cgroups(runtime) == []
    assert not directory.exists()
    assert run(runtime.status("gone")).state == "absent"


def test_a_bad_entrypoint_fails_plainly(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(id="bad", rootfs=rootfs, args=("/bin/nosuch", "x"))
    with pytest.raises(RuntimeFailure, match=r"entrypoint '/bin/nosuch' does not exist"):
        run(runtime.start(spec))
    assert run(runtime.containers()) == []
    assert runc_ids(runtime) == []


def test_bad_specs_are_refused_before_runc(runtime: RuncRuntime, rootfs: Path) -> None:
    with pytest.raises(RuntimeFailure, match="container id"):
        run(runtime.start(ContainerSpec(id="a/b", rootfs=rootfs, args=("sh",))))
    with pytest.raises(RuntimeFailure, match=r"rootfs .* is missing"):
        run(runtime.start(ContainerSpec(id="x", rootfs=rootfs / "nope", args=("sh",))))
    with pytest.raises(RuntimeFailure, match=r"network namespace .* does not exist"):
        run(
            runtime.start(
                ContainerSpec(id="x", rootfs=rootfs, args=("sh",), netns=Path("/run/netns/nope0"))
            )
        )
    with pytest.raises(RuntimeFailure, match="cannot pause container x: it is not running"):
        run(runtime.pause("x"))
    assert run(runtime.containers()) == []


def test_the_log_is_bounded(runtime: RuncRuntime, rootfs: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "big.log"
    log.parent.mkdir()
    spec = ContainerSpec(
        id="chatty",
        rootfs=rootfs,
        log_path=log,
        args=("sh", "-c", "head -c 9000000 /dev/zero; echo; echo last words; exec sleep 1000"),
    )
    run(runtime.start(spec))
    wait_until(lambda: log.exists() and "last words" in log.read_text(errors="replace"))
    rotated = log.with_name("big.log.1")
    assert rotated.exists()
    assert rotated.stat().st_size <= 8 * MIB
    assert rotated.stat().st_size + log.stat().st_size == 9_000_000 + len("\nlast words\n")
    assert not (runtime.containers_dir / "chatty" / "output.log").exists()


def test_a_paused_container_waits_for_its_restart(runtime: RuncRuntime, rootfs: Path) -> None:
    spec = ContainerSpec(id="flaky", rootfs=rootfs, args=("sh", "-c", "sleep 0.2; exit 1"))
    run(runtime.start(spec))
    wait_for(runtime, "flaky", lambda s: s.state == "restarting")
    run(runtime.pause("flaky"))
    status = run(runtime.status("flaky"))
    assert (status.state, status.restarts) == ("paused", 0)
    time.sleep(1.2)  # past the first backoff
    assert run(runtime.status("flaky")).restarts == 0
    run(runtime.resume("flaky"))
    wait_for(runtime, "flaky", lambda s: s.restarts >= 1)


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3])
def test_a_daemon_killed_while_starting_converges(
    make_runtime: Callable[[], RuncRuntime], rootfs: Path, delay: float
) -> None:
    runtime = make_runtime()
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(runtime.root), runtime.scope, str(rootfs)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    time.sleep(delay)  # somewhere in its start-up, its files or the shim's first start
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    restarted = make_runtime()
    kept = run(restarted.recover())
    assert kept in ([], ["survivor"])
    spec = ContainerSpec(id="survivor", rootfs=rootfs, args=("sleep", "1000"))
    status = run(restarted.start(spec))
    assert status.state == "running" and status.pid is not None
    assert runc_ids(restarted) == ["survivor"]
    assert len(shims_of(restarted.containers_dir / "survivor")) == 1


def test_bind_mounts_reach_missing_targets(
    runtime: RuncRuntime, rootfs: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from the host\n")
    spec = ContainerSpec(
        id="mounts",
        rootfs=rootfs,
        mounts=(BindMount(data, "/mnt/data/deep"), BindMount(data, "/ro", readonly=True)),
        args=(
            "sh",
            "-c",
            "cat /mnt/data/deep/hello; echo w > /mnt/data/deep/written;"
            " touch /ro/x || echo refused; echo listed; exec sleep 1000",
        ),
    )
    run(runtime.start(spec))
    wait_until(lambda: "listed" in log_of(runtime, "mounts"))
    output = log_of(runtime, "mounts")
    assert "from the host" in output and "refused" in output
    assert (data / "written").read_text() == "w\n"
    assert not (data / "x").exists()
