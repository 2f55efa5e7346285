"""The spec's rules, each reported at the exact line and column of what breaks it."""

from __future__ import annotations

import textwrap

import pytest

from tests.client.spec.conftest import only_problem, problems_of
from zgrid.client import SpecError, parse_spec

BASE = """\
name: app
machines:
  - name: web
    flist: busybox
"""


def test_a_machine_runs_as_a_container_or_a_vm_and_nothing_else() -> None:
    problem = only_problem(BASE + "    mode: kvm\n")
    assert (problem.line, problem.column, problem.path) == (5, 11, "machines[0].mode")
    assert problem.message == "must be one of container, vm, got 'kvm'"
    assert parse_spec(BASE + "    mode: vm\n").machines[0].mode == "vm"
    assert parse_spec(BASE).machines[0].mode == "container"


def test_unknown_field_points_at_the_key() -> None:
    problem = only_problem(
        """\
        name: app
        machines:
          - name: web
            flist: busybox
            colour: blue
        """
    )
    assert (problem.line, problem.column) == (5, 5)
    assert problem.path == "machines[0].colour"
    assert problem.message == (
        "unknown field 'colour' (known: cpu, disk, disks, entrypoint, env, flist, memory, mode, "
        "name, placement, planetary, public_ipv4, public_ipv6, replicas, ssh_keys)"
    )


def test_every_unknown_key_of_one_mapping_is_its_own_problem() -> None:
    found = problems_of("name: app\nmachine: []\nzdb: []\n")
    assert [(p.line, p.column, p.path) for p in found] == [(2, 1, "machine"), (3, 1, "zdb")]


def test_bad_memory_unit() -> None:
    problem = only_problem(BASE + "    memory: 2GB2\n")
    assert (problem.line, problem.column, problem.path) == (5, 13, "machines[0].memory")
    assert problem.message == (
        "bad memory unit 'GB2' (use one of B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"
    )


def test_dangling_disk_reference() -> None:
    problem = only_problem(
        BASE
        + "    disks: [{disk: data, mountpoint: /data}]\n"
        + "disks:\n  - {name: logs, size: 1GiB}\n"
    )
    assert (problem.line, problem.column) == (5, 20)
    assert problem.path == "machines[0].disks[0].disk"
    assert problem.message == "no disk named 'data' (disks: logs)"


def test_dangling_zdb_machine() -> None:
    problem = only_problem(BASE + "zdbs:\n  - {name: store, size: 1GiB, machine: db}\n")
    assert (problem.line, problem.column, problem.path) == (6, 40, "zdbs[0].machine")
    assert problem.message == "no machine named 'db' (machines: web)"


def test_duplicate_name() -> None:
    problem = only_problem(BASE + "  - name: web\n    flist: nginx\n")
    assert (problem.line, problem.column, problem.path) == (5, 11, "machines[1].name")
    assert "duplicate name 'web': machine machines[0] has it already" in problem.message


def test_names_share_one_namespace_across_machines_disks_and_zdbs() -> None:
    found = problems_of(
        BASE + "disks:\n  - {name: web, size: 1GiB}\nzdbs:\n  - {name: web, size: 1GiB}\n"
    )
    assert [(p.line, p.column, p.path) for p in found] == [
        (6, 12, "disks[0].name"),
        (8, 12, "zdbs[0].name"),
    ]


def test_a_disk_belongs_to_one_machine() -> None:
    problem = only_problem(
        """\
        name: app
        machines:
          - {name: a, flist: busybox, disks: [{disk: data, mountpoint: /data}]}
          - {name: b, flist: busybox, disks: [{disk: data, mountpoint: /data}]}
        disks: [{name: data, size: 1GiB}]
        """
    )
    assert (problem.line, problem.column, problem.path) == (4, 46, "machines[1].disks[0].disk")
    assert "already mounted by machine 'a' (a disk belongs to one machine)" in problem.message


def test_mountpoints_are_distinct_and_without_dot_dot() -> None:
    found = problems_of(
        """\
        name: app
        machines:
          - name: a
            flist: busybox
            disks:
              - {disk: one, mountpoint: /data}
              - {disk: two, mountpoint: /data/}
              - {disk: three, mountpoint: /x/../etc}
              - {disk: one, mountpoint: relative}
        disks: [{name: one, size: 1GiB}, {name: two, size: 1GiB}, {name: three, size: 1GiB}]
        """
    )
    assert [(p.line, p.column, p.path, p.message) for p in found] == [
        (7, 33, "machines[0].disks[1].mountpoint", "mountpoint '/data/' is already used by disks[0]"),
        (8, 35, "machines[0].disks[2].mountpoint", "mountpoint must not contain '..', got '/x/../etc'"),
        (9, 16, "machines[0].disks[3].disk", "disk 'one' is mounted twice by this machine"),
        (9, 33, "machines[0].disks[3].mountpoint", "'relative' is not a valid mountpoint: an absolute path inside the machine, not '/' and without '..'"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("memory: 249MiB", "memory must be at least 250 MiB, got 249 MiB"),
        ("memory: 2TiB", "memory must be at most 1 TiB, got 2 TiB"),
        ("memory: 1.5", "must be a size"),
        ("disk: 65TiB", "disk must be at most 64 TiB, got 65 TiB"),
        ("cpu: 0", "must be at least 1, got 0"),
        ("cpu: 257", "must be at most 256, got 257"),
        ("cpu: 2.0", "must be an integer, got 2.0"),
        ("cpu: true", "must be an integer, got True"),
        ("replicas: 0", "must be at least 1, got 0"),
        ("replicas: 33", "must be at most 32, got 33"),
        ("env: {PORT: 8080}", 'must be text, got 8080: write it quoted, "8080"'),
        ("env: {DEBUG: false}", 'must be text, got False: write it quoted, "false"'),
        ("env: {1X: a}", "'1X' is not a valid environment variable name"),
        ("planetary: 'yes'", "must be true or false, got 'yes'"),
        ("placement: {nodes: [0]}", "must be at least 1, got 0"),
        ("placement: {nodes: [1, 1]}", "must not list the same item twice"),
        ("placement: {country: ''}", "must not be empty"),
        ("placement: {country: " + "x" * 65 + "}", "must be at most 64 characters long, got 65"),
        ("placement: {min_free: {memory: 1XB}}", "bad memory unit 'XB'"),
        ("placement: {min_free: {gpu: 1}}", "unknown field 'gpu' (known: cpu, hdd, memory, ssd)"),
    ],
)
def test_machine_rules(line: str, message: str) -> None:
    problem = only_problem(BASE + "    " + line + "\n")
    assert problem.line == 5
    assert message in problem.message


@pytest.mark.parametrize(
    ("flist", "valid"),
    [
        ("busybox", True),
        ("7/busybox.fl", True),
        ("https://hub.example/7/busybox.fl", True),
        ("a b", False),
        ("ftp://x/y", False),
        ("..", False),
        ("0/busybox", False),
        ("", False),
        ("x" * 129, False),
    ],
)
def test_flist(flist: str, valid: bool) -> None:
    text = f"name: app\nmachines: [{{name: web, flist: '{flist}'}}]\n"
    if valid:
        assert parse_spec(text).machines[0].flist == flist
    else:
        problem = only_problem(text)
        assert (problem.line, problem.column, problem.path) == (2, 31, "machines[0].flist")
        assert "is not a valid flist: a hub name" in problem.message


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("app", True),
        ("a-1", True),
        ("9lives", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("App", False),
        ("-app", False),
        ("my_app", False),
    ],
)
def test_deployment_name(name: str, valid: bool) -> None:
    text = f"name: '{name}'\n"
    if valid:
        assert parse_spec(text).name == name
    else:
        problem = only_problem(text)
        assert (problem.line, problem.column, problem.path) == (1, 7, "name")
        assert "is not a valid deployment name" in problem.message


@pytest.mark.parametrize(
    ("name", "valid"),
    [("web", True), ("Web_2", True), ("w" * 24, True), ("w" * 25, False), ("2web", False), ("we-b", False), ("_w", False)],
)  # fmt: skip
def test_entry_name(name: str, valid: bool) -> None:
    text = f"name: app\ndisks: [{{name: '{name}', size: 1GiB}}]\n"
    if valid:
        assert parse_spec(text).disks[0].name == name
    else:
        problem = only_problem(text)
        assert (problem.line, problem.column, problem.path) == (2, 16, "disks[0].name")
        assert "is not a valid entry name" in problem.message


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("0", "size must be at least 1 MiB, got 0 B"),
        ("1000KiB", "size must be at least 1 MiB, got 1000 KiB"),
        ("65TiB", "size must be at most 64 TiB"),
        ("-1", "must be at least 0, got -1"),
    ],
)
def test_disk_and_zdb_sizes(size: str, message: str) -> None:
    for section in ("disks", "zdbs"):
        problem = only_problem(f"name: app\n{section}: [{{name: d, size: {size}}}]\n")
        assert (problem.line, problem.path) == (2, f"{section}[0].size")
        assert message in problem.message


def test_missing_required_fields_point_at_the_mapping() -> None:
    found = problems_of("name: app\nmachines:\n  - cpu: 2\nzdbs: [{name: z}]\n")
    assert [(p.line, p.column, p.path, p.message) for p in found] == [
        (3, 5, "machines[0]", "missing required field 'flist'"),
        (3, 5, "machines[0]", "missing required field 'name'"),
        (4, 8, "zdbs[0]", "missing required field 'size'"),
    ]
    assert only_problem("machines: []\n").message == "missing required field 'name'"


def test_zdb_with_a_machine_takes_no_placement() -> None:
    problem = only_problem(BASE + "zdbs:\n  - {name: z, size: 1GiB, machine: web, placement: {}}\n")
    assert (problem.line, problem.column, problem.path) == (6, 41, "zdbs[0].placement")
    assert "give machine or placement, not both" in problem.message


def test_every_problem_in_one_error_sorted_by_position() -> None:
    text = textwrap.dedent(
        """\
        name: App
        machines:
          - name: web
            flist: busybox
            memory: 10MiB
            cpu: 999
            disks: [{disk: nope, mountpoint: /d}]
          - name: web
            flist: busybox
        zdbs: [{name: z, size: 1GiB, machine: ghost, extra: 1}]
        """
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source="app.yaml")
    found = caught.value.problems
    assert [(p.line, p.column) for p in found] == sorted((p.line, p.column) for p in found)
    assert [p.path for p in found] == [
        "name",
        "machines[0].memory",
        "machines[0].cpu",
        "machines[0].disks[0].disk",
        "machines[1].name",
        "zdbs[0].machine",
        "zdbs[0].extra",
    ]
    assert str(caught.value).startswith("app.yaml:1:7: name: 'App' is not a valid deployment name")


def test_a_schema_problem_is_not_reported_twice() -> None:
    # -1 breaks the schema's minimum; the unit parser would refuse it too.
    found = problems_of("name: app\ndisks: [{name: d, size: -1}]\n")
    assert len(found) == 1


def test_the_number_of_problems_listed_is_bounded() -> None:
    found = problems_of("name: app\nmachines:\n" + "  - 1\n" * 150)
    assert len(found) == 101
    assert (found[0].path, found[0].message) == ("machines", "must have at most 64 items, got 150")
    assert [p.line for p in found[1:100]] == list(range(3, 102))  # one per item
    assert (found[100].line, found[100].message) == (102, "51 more problems not shown")
