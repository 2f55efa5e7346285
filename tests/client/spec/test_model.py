"""A valid spec read into the model: every field, the defaults, placement over placement."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from zgrid.client import (
    DiskSpec,
    MachineSpec,
    MountSpec,
    NetworkSpec,
    PlacementRules,
    Spec,
    SpecError,
    ZdbSpec,
    load_spec,
    parse_spec,
    spec_summary,
)

GIB = 2**30
MIB = 2**20
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.y*ml"))

FULL = textwrap.dedent(
    """\
    name: hello
    placement:
      nodes: [1, 2]
      farm: 1
      country: BE
      min_free: {cpu: 1, memory: 1GiB, ssd: 10GiB, hdd: 0}
      certified: true
      spread: true
    machines:
      - name: web
        flist: busybox
        cpu: 2
        memory: 256MiB
        disk: 1GiB
        disks: [{disk: data, mountpoint: /data}]
        env: {GREETING: hello}
        entrypoint: /bin/httpd -f -p 8080
        ssh_keys: ["ssh-ed25519 AAAAC3Nza key@host"]
        planetary: false
        replicas: 2
        placement: {farm: two, min_free: {ssd: 1GiB}}
      - name: worker
        flist: https://hub.example/7/worker.fl
        mode: vm
    disks:
      - {name: data, size: 1.5GiB}
      - {name: spare, size: 500MB}
    zdbs:
      - {name: store, size: 1GiB, mode: seq, public: true, password: secret, machine: web}
      - {name: archive, size: 2GiB, placement: {nodes: [3], spread: false}}
    """
)


def test_full_spec_reads_into_the_model() -> None:
    rules = PlacementRules(
        nodes=(1, 2),
        farm=1,
        country="BE",
        min_free_cru=1,
        min_free_mru=GIB,
        min_free_sru=10 * GIB,
        min_free_hru=0,
        certified=True,
        spread=True,
    )
    assert parse_spec(FULL) == Spec(
        name="hello",
        machines=(
            MachineSpec(
                name="web",
                flist="busybox",
                cpu=2,
                memory=256 * MIB,
                disk=GIB,
                mounts=(MountSpec(disk="data", mountpoint="/data"),),
                env={"GREETING": "hello"},
                entrypoint="/bin/httpd -f -p 8080",
                ssh_keys=("ssh-ed25519 AAAAC3Nza key@host",),
                planetary=False,
                replicas=2,
                # The machine's keys over the spec's: min_free key by key.
                placement=PlacementRules(
                    nodes=(1, 2),
                    farm="two",
                    country="BE",
                    min_free_cru=1,
                    min_free_mru=GIB,
                    min_free_sru=GIB,
                    certified=True,
                ),
            ),
            MachineSpec(name="worker", flist="https://hub.example/7/worker.fl", mode="vm"),
        ),
        zdbs=(
            ZdbSpec(
                name="store", size=GIB, mode="seq", public=True, password="secret", machine="web"
            ),
            ZdbSpec(
                name="archive",
                size=2 * GIB,
                placement=PlacementRules(
                    nodes=(3,),
                    farm=1,
                    country="BE",
                    min_free_cru=1,
                    min_free_mru=GIB,
                    min_free_sru=10 * GIB,
                    certified=True,
                    spread=False,
                ),
            ),
        ),
        disks=(DiskSpec(name="data", size=3 * GIB // 2), DiskSpec(name="spare", size=500 * 10**6)),
        placement=rules,
    )


def test_defaults() -> None:
    spec = parse_spec("name: app\nmachines: [{name: web, flist: busybox}]\n")
    assert spec.machines == (MachineSpec(name="web", flist="busybox"),)
    machine = spec.machines[0]
    assert (machine.cpu, machine.memory, machine.disk, machine.replicas) == (1, 512 * MIB, 0, 1)
    assert machine.planetary is True
    assert machine.placement is None  # no placement of its own: the spec's applies
    assert spec.placement == PlacementRules()
    assert spec.rules_for(machine) is spec.placement
    assert spec.source is None
    zdb = parse_spec("name: app\nzdbs: [{name: z, size: 1GiB}]\n").zdbs[0]
    assert (zdb.mode, zdb.public, zdb.password, zdb.machine, zdb.placement) == (
        "user",
        False,
        None,
        None,
        None,
    )


def test_env_is_read_only() -> None:
    env = parse_spec(FULL).machines[0].env
    with pytest.raises(TypeError):
        env["X"] = "y"  # type: ignore[index]


def test_summary_counts_every_item() -> None:
    summary = spec_summary(parse_spec(FULL))
    assert summary.to_dict() == {
        "name": "hello",
        "machines": 2,
        "replicas": 3,
        "disks": 2,
        "zdbs": 2,
        "cpu": 2 * 2 + 1,
        "memory": 2 * 256 * MIB + 512 * MIB,
        # web: 1 GiB root per replica, its disk per replica; worker: the smallest root; spare.
        "ssd": 2 * GIB + 2 * (3 * GIB // 2) + 500 * MIB + 500 * 10**6,
        "hdd": 2 * GIB + 2 * GIB,
    }
    assert str(summary).startswith("hello: 2 machine(s), 3 replica(s), 2 disk(s), 2 zdb(s); cpu 5")


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("\ufeffname: app\n", encoding="utf-8")
    spec = load_spec(path)
    assert (spec.name, spec.source) == ("app", path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the file: No such file or directory"),
        (b"name: \xff\n", "the file is not UTF-8 text"),
        (b"name: app\n" + b"#" * (1 << 20), "the file is larger than 1048576 bytes"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "app.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.message) == (1, message)
    assert caught.value.source == str(path)


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path)
    assert caught.value.problems[0].message == "cannot read the file: Is a directory"


def test_undecodable_byte_is_located(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_bytes(b"name: app\nplacement: {country: B\xe9}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    problem = caught.value.problems[0]
    assert (problem.line, problem.column) == (2, 23)


def test_large_text_is_refused() -> None:
    with pytest.raises(SpecError, match="larger than 1048576 bytes"):
        parse_spec("name: app\n" + " " * (1 << 20))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_are_valid(example: Path) -> None:
    spec = load_spec(example)
    assert spec.machines or spec.zdbs or spec.disks


def test_a_spec_file_keeps_its_private_network(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: app\nnetwork: {name: lan, ip_range: 10.7.0.0/16}\n"
        "machines: [{name: web, flist: busybox}]\n"
    )
    spec = load_spec(path)
    assert spec.network == NetworkSpec(name="lan", ip_range="10.7.0.0/16")
    assert spec.source == path
    assert parse_spec("name: app\n").network is None
    assert parse_spec("name: app\nnetwork: {}\n").network == NetworkSpec()
