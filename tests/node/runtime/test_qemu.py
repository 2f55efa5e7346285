"""The qemu runtime with real VMs: the default guest boots a busybox root over 9p, pause
freezes it, a killed qemu boots again under its shim, a killed shim's qemu is found and
removed, and a stopped VM leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.node.runtime.conftest import run, wait_until
from zgrid.node.errors import RuntimeFailure
from zgrid.node.runtime.guest import build_initramfs, find_kernel, unpack_kernel
from zgrid.node.runtime.qemu import QemuRuntime, VMDisk, VMShare, VMSpec, qemu_argv
from zgrid.node.runtime.supervise import shim_pid

MIB = 1 << 20


@pytest.fixture(scope="session")
def guest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default guest's kernel (ELF) and initramfs, made once for the session."""
    require_root()
    require_tool("qemu-system-x86_64")
    require_tool("busybox")
    cache = tmp_path_factory.mktemp("guest")
    kernel = find_kernel()
    return unpack_kernel(cache, kernel), build_initramfs(cache, kernel)


@pytest.fixture
def qemu(tmp_path: Path, guest: tuple[Path, Path]) -> Iterator[QemuRuntime]:
    """A runtime whose VMs are all stopped afterwards; no qemu of it may be left."""
    runtime = QemuRuntime(tmp_path / "runtime")
    yield runtime
    for vm_id in run(runtime.vms()):
        run(runtime.stop(vm_id))
    leftovers = _qemus(runtime)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []


def _qemus(runtime: QemuRuntime) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(runtime.root).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


def _spec(
    tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path, script: str, **changes: object
) -> VMSpec:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    quoted = script.replace("'", "'\\''")
    (conf / "config.sh").write_text(
        f"hostname_is vmtest\nentrypoint\nset -- /bin/sh -c '{quoted}'\n"
    )
    root = tmp_path / "root.img"
    if not root.exists():
        with root.open("wb") as handle:
            handle.truncate(64 * MIB)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(root)], check=True)
    fields: dict[str, object] = {
        "id": "7-1-vm",
        "kernel": guest[0],
        "initrd": guest[1],
        "cmdline": "console=ttyS0 panic=1 quiet",
        "cpu": 2,
        "memory": 256 * MIB,
        "disks": (VMDisk("zgrid-root", root),),
        "shares": (VMShare("zroot", busybox_root), VMShare("zconf", conf)),
        "log_path": tmp_path / "console.log",
        **changes,
    }
    return VMSpec(**fields)  # type: ignore[arg-type]


def _console(spec: VMSpec) -> str:
    assert spec.log_path is not None
    try:
        return spec.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_console(spec: VMSpec, needle: str, count: int = 1, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while _console(spec).count(needle) < count:
        assert time.monotonic() < deadline, f"no {needle!r} on the console: {_console(spec)}"
        time.sleep(0.05)


TICKER = (
    "echo cpus=$(nproc) mem=$(free -m | awk '/Mem:/ {print $2}'); "
    "while :; do echo tick; sleep 0.2; done"
)


def test_a_vm_boots_its_root_over_9p_with_its_cpus_and_memory(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    spec = _spec(tmp_path, guest, busybox_root, TICKER)
    status = run(qemu.start(spec))
    assert status.state == "running" and status.pid is not None
    _wait_console(spec, "tick")
    console = _console(spec)
    assert "zgrid-init: ready" in console
    assert "cpus=2" in console
    total = int(console.split("mem=")[1].split()[0])
    assert 200 <= total <= 256, console  # the kernel keeps some of its 256 MiB
    # The same spec again is the same VM.
    again = run(qemu.start(spec))
    assert again.pid == status.pid
    # A changed spec is a new VM.
    changed = _spec(tmp_path, guest, busybox_root, TICKER, cpu=1)
    third = run(qemu.start(changed))
    assert third.pid != status.pid
    _wait_console(changed, "cpus=1")


def test_pause_freezes_the_guest_and_resume_thaws_it(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    spec = _spec(tmp_path, guest, busybox_root, TICKER)
    run(qemu.start(spec))
    _wait_console(spec, "tick")
    run(qemu.pause(spec.id))
    assert run(qemu.status(spec.id)).state == "paused"
    time.sleep(0.3)  # a tick on its way out when it froze
    frozen = _console(spec).count("tick")
    time.sleep(1.5)
    assert _console(spec).count("tick") == frozen
    run(qemu.resume(spec.id))
    assert run(qemu.status(spec.id)).state == "running"
    _wait_console(spec, "tick", frozen + 2, timeout=10)


def test_a_killed_qemu_boots_again_and_its_disk_keeps_what_was_written(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    # Each boot appends a line to /boot-count on the root volume and prints the file.
    script = "echo boot >> /boot-count; sync; echo boots=$(wc -l < /boot-count); sleep 1000"
    spec = _spec(tmp_path, guest, busybox_root, script)
    first = run(qemu.start(spec))
    _wait_console(spec, "boots=1")
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    _wait_console(spec, "boots=2")
    status = run(qemu.status(spec.id))
    assert status.restarts == 1 and status.pid not in (None, first.pid)
    assert status.exits[-1].code == 128 + signal.SIGKILL
    assert "boots=1" in status.exits[-1].output_tail


def test_a_guest_that_powers_off_is_recorded_with_its_console_and_booted_again(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    spec = _spec(tmp_path, guest, busybox_root, "echo about to leave; exit 7")
    run(qemu.start(spec))
    wait_until(lambda: run(qemu.status(spec.id)).exits != (), timeout=60)
    ended = run(qemu.status(spec.id)).exits[0]
    assert ended.code == 0  # the guest powered off
    assert "the entrypoint exited with code 7" in ended.output_tail
    _wait_console(spec, "about to leave", 2)  # booted again by its shim


def test_recover_removes_the_qemu_of_a_dead_shim_and_stop_leaves_nothing(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    spec = _spec(tmp_path, guest, busybox_root, TICKER)
    status = run(qemu.start(spec))
    directory = qemu.vms_dir / spec.id
    shim = shim_pid(directory)
    assert shim is not None and status.pid is not None
    # A new runtime (a restarted daemon) finds the live VM as it is.
    again = QemuRuntime(qemu.root)
    assert run(again.recover()) == [spec.id]
    assert run(again.status(spec.id)).pid == status.pid
    os.kill(shim, signal.SIGKILL)
    wait_until(lambda: run(again.status(spec.id)).state == "stopped")
    assert run(again.recover()) == []
    old = status.pid
    wait_until(lambda: not Path(f"/proc/{old}").exists() or _zombie(old))
    assert not directory.exists()
    fresh = run(again.start(spec))  # boots anew: the old qemu no longer holds the disk
    _wait_console(spec, "tick", _console(spec).count("tick") + 1)
    run(again.stop(spec.id))
    assert not directory.exists()
    assert not Path(f"/proc/{fresh.pid}").exists() or _zombie(fresh.pid or 0)
    assert _qemus(qemu) == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_spec_that_cannot_run_is_refused_with_its_reason(
    qemu: QemuRuntime, tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    cases = [
        ({"cpu": 0}, "cpu must be 1 to 255"),
        ({"memory": 10 * MIB}, "at least 64 MiB"),
        ({"kernel": tmp_path / "nope"}, "its kernel"),
        ({"disks": (VMDisk("zgrid-root", tmp_path / "missing.img"),)}, "disk image"),
        ({"disks": (VMDisk("x" * 21, guest[1]),)}, "disk serial"),
        ({"id": "../up"}, "not valid"),
    ]
    for change, message in cases:
        assert isinstance(change, dict)
        with pytest.raises(RuntimeFailure, match=message):
            run(qemu.start(_spec(tmp_path, guest, busybox_root, "true", **change)))
    assert run(qemu.vms()) == []


def test_the_accelerator_is_probed_once_and_kept(
    qemu: QemuRuntime, guest: tuple[Path, Path]
) -> None:
    found, why = run(qemu.accelerator(*guest))
    assert found in ("kvm", "tcg")
    assert (found == "kvm") == (why == "")
    record = qemu.root / "accelerator.json"
    assert record.is_file()
    started = time.monotonic()
    assert run(QemuRuntime(qemu.root).accelerator(*guest)) == (found, why)
    assert time.monotonic() - started < 1  # read back, not probed again


def test_the_command_line_names_every_part_of_the_spec(
    tmp_path: Path, guest: tuple[Path, Path], busybox_root: Path
) -> None:
    spec = _spec(
        tmp_path, guest, busybox_root, "true", tap="zt0", mac="52:54:00:01:02:03", accelerator="kvm"
    )
    argv = qemu_argv(spec, "qemu-system-x86_64", tmp_path / "qmp.sock")
    joined = " ".join(argv)
    assert "q35,accel=kvm" in joined and "-cpu host" in joined
    assert "-smp 2" in joined and "-m 256M" in joined
    assert "ifname=zt0" in joined and "mac=52:54:00:01:02:03" in joined
    assert "serial=zgrid-root" in joined and "mount_tag=zroot" in joined
    assert "-no-reboot" in argv
