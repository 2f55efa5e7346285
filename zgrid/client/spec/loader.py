"""Read a spec file: YAML, checked against ``spec.schema.json`` and for what a schema cannot
say, every problem reported at its line and column in one :class:`SpecError`.

The format::

    name: hello                     # required: ^[a-z0-9][a-z0-9-]{0,62}$
    placement:                      # optional, applies to every entry
      nodes: [1, 2]                 # only these node ids (>= 1)
      farm: 1                       # a farm id, or a farm's name (text)
      country: BE                   # as nodes report it, case-insensitive
      min_free: {cpu: 1, memory: 1GiB, ssd: 10GiB, hdd: 0}   # free besides what the entry takes
      certified: true               # only nodes of certified farms (default false)
      spread: true                  # replicas of one machine on distinct nodes (default true)
    machines:
      - name: web                   # required: ^[a-zA-Z][a-zA-Z0-9_]{0,23}$
        flist: busybox              # required: a hub name ("busybox", "7/busybox") or an http(s) URL
        mode: container             # or vm: a virtual machine with its own kernel (qemu)
        cpu: 1                      # 1 to 256, default 1
        memory: 256MiB              # 250 MiB to 1 TiB, default 512MiB
        disk: 1GiB                  # root disk; default: the node's smallest for cpu and memory
        disks: [{disk: data, mountpoint: /data}]   # entries of `disks`, each mounted once
        env: {GREETING: hello}      # values are text: numbers and booleans must be quoted
        entrypoint: /bin/httpd -f -p 8080
        ssh_keys: ["ssh-ed25519 AAAA..."]
        planetary: true             # default true
        replicas: 2                 # 1 to 32, default 1
        placement: {farm: 2}        # the top-level placement with these keys over it
    disks:
      - {name: data, size: 1GiB}    # 1 MiB to 64 TiB; goes with each replica of its machine
    zdbs:
      - {name: store, size: 1GiB, mode: user, public: false, password: "...", machine: web}

Sizes are bytes or a number with a unit: B, KB, MB, GB, TB, PB (1000-based), KiB, MiB,
GiB, TiB, PiB (1024-based). Names are unique across machines, disks and zdbs (they become
workload names, which share one namespace on a node). An entry's ``placement`` is None in
the model when it gives none; a zdb with a ``machine`` takes no placement. A problem's
path is like ``machines[1].memory`` (indexes from 0). A spec is at most 1 MiB and 10,000
YAML values; at most 100 problems are listed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zgrid.client.errors import SpecError, SpecProblem
from zgrid.client.spec.build import build_spec
from zgrid.client.spec.document import format_path, read_document
from zgrid.client.spec.model import Spec
from zgrid.client.spec.schema import schema_problems

__all__ = ["MAX_PROBLEMS", "MAX_SPEC_BYTES", "load_spec", "parse_spec"]

MAX_SPEC_BYTES = 1 << 20
MAX_PROBLEMS = 100  # reported; past that, one more problem says how many were left out


def parse_spec(text: str, *, source: str = "<spec>") -> Spec:
    """The checked spec of a YAML text; SpecError with every problem, sorted by position."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            source, [SpecProblem("", 1, 1, f"the spec is larger than {MAX_SPEC_BYTES} bytes")]
        )
    document = read_document(text)
    if document.data is None and document.problems:
        raise SpecError(source, document.problems)
    refused = {format_path(path) for path in document.refused}
    problems = [
        *document.problems,
        *(problem for problem in schema_problems(document) if problem.path not in refused),
    ]
    reported = {problem.path for problem in problems}
    document.problems = []
    spec = build_spec(document)
    # What the schema already said about a value is not said twice.
    problems += [problem for problem in document.problems if problem.path not in reported]
    if problems:
        unique = sorted(set(problems), key=lambda p: (p.line, p.column, p.path, p.message))
        if len(unique) > MAX_PROBLEMS:
            rest = unique[MAX_PROBLEMS]
            more = SpecProblem(
                "", rest.line, rest.column, f"{len(unique) - MAX_PROBLEMS} more problems not shown"
            )
            unique = [*unique[:MAX_PROBLEMS], more]
        raise SpecError(source, unique)
    return spec


def load_spec(path: Path) -> Spec:
    """The checked spec in the file at ``path`` (at most :data:`MAX_SPEC_BYTES`, UTF-8)."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError(source, [SpecProblem("", 1, 1, f"cannot read the file: {reason}")]) from exc
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            source, [SpecProblem("", 1, 1, f"the file is larger than {MAX_SPEC_BYTES} bytes")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise SpecError(
            source, [SpecProblem("", line, column, "the file is not UTF-8 text")]
        ) from exc
    spec = parse_spec(text.removeprefix("\ufeff"), source=source)
    return dataclasses.replace(spec, source=path)
