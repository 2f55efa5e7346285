"""Docker and OCI image archives, built here with tarfile, turned into flist entries."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import cramjam
import pytest

from tests.processes import run_zgrid
from zgrid.flist.errors import ImageError
from zgrid.flist.fetch import BlockFetcher
from zgrid.flist.meta import FlistReader, Route
from zgrid.flist.oci import image_entries
from zgrid.flist.pack import pack_entries
from zgrid.flist.stores import Router
from zgrid.flist.tree import TreeEntry
from zgrid.flist.unpack import unpack

MTIME = 1_700_000_000
AS_ROOT = os.geteuid() == 0
CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo hi"],
        "Env": ["PATH=/bin", "A=b"],
        "WorkingDir": "/app",
    },
    "rootfs": {"type": "layers", "diff_ids": []},
}
TAGS = {
    "entrypoint": '["/bin/sh","-c"]',
    "cmd": '["echo hi"]',
    "env": '["PATH=/bin","A=b"]',
    "workdir": "/app",
    "image": "example/app:1.0",
}

Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **fields: object) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, MTIME
    data = fields.pop("data", b"")
    assert isinstance(data, bytes)
    for key, value in fields.items():
        setattr(info, key, value)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def directory(name: str, mode: int = 0o755, **fields: object) -> Member:
    return member(name, tarfile.DIRTYPE, mode, **fields)


def tar_bytes(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_layers(*, devices: bool = True) -> list[bytes]:
    lower = [
        directory("./"),
        directory("./bin"),
        member("./bin/sh", mode=0o755, data=b"#!shell"),
        member("./bin/sh2", tarfile.LNKTYPE, mode=0o755, linkname="bin/sh"),
        member("./bin/rsh", tarfile.SYMTYPE, mode=0o777, linkname="sh"),
        directory("./etc"),
        member("./etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        member("./etc/secret", data=b"secret-data"),
        member("./etc/old", data=b"old-data"),
        member("./etc/old-copy", tarfile.LNKTYPE, linkname="./etc/old"),
        directory("./opt"),
        member("./opt/a", data=b"opt-a"),
        directory("./opt/sub"),
        member("./opt/sub/b", data=b"opt-b"),
        # "home" is not in the layer: it is made as the parent of "home/user".
        directory("./home/user", 0o700, uid=1000, gid=1000, mtime=MTIME + 5),
        member("./home/user/notes", mode=0o600, uid=1000, gid=1000, data=b"notes"),
        directory("./tmp", 0o1777),
        directory("./var/cache"),
        member("./var/cache/x", data=b"cached"),
        member("./run/fifo", tarfile.FIFOTYPE),
    ]
    if devices:
        lower.append(member("./dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3))
    upper = [
        member("opt/new", data=b"opt-new"),  # before the marker: it stays all the same
        member("opt/.wh..wh..opq"),
        member("/etc/.wh.secret"),
        member("etc/.wh.old"),
        member("etc/.wh.never-there"),
        directory("bin", 0o750),
        member("bin/su", mode=0o4755, data=b"su"),
        member("var/cache", tarfile.SYMTYPE, mode=0o777, linkname="/tmp"),
    ]
    return [tar_bytes(lower), tar_bytes(upper)]


def expected_tree(*, devices: bool = True) -> dict[str, tuple[int, int, int, object]]:
    """path -> (mode, uid, gid, content | symlink target | rdev | None)."""
    tree: dict[str, tuple[int, int, int, object]] = {
        "": (stat.S_IFDIR | 0o755, 0, 0, None),
        "bin": (stat.S_IFDIR | 0o750, 0, 0, None),
        "bin/rsh": (stat.S_IFLNK | 0o777, 0, 0, b"sh"),
        "bin/sh": (stat.S_IFREG | 0o755, 0, 0, b"#!shell"),
        "bin/sh2": (stat.S_IFREG | 0o755, 0, 0, b"#!shell"),
        "bin/su": (stat.S_IFREG | 0o4755, 0, 0, b"su"),
        "etc": (stat.S_IFDIR | 0o755, 0, 0, None),
        "etc/old-copy": (stat.S_IFREG | 0o644, 0, 0, b"old-data"),
        "etc/passwd": (stat.S_IFREG | 0o644, 0, 0, b"root:x:0:0::/root:/bin/sh\n"),
        "home": (stat.S_IFDIR | 0o755, 0, 0, None),
        "home/user": (stat.S_IFDIR | 0o700, 1000, 1000, None),
        "home/user/notes": (stat.S_IFREG | 0o600, 1000, 1000, b"notes"),
        "opt": (stat.S_IFDIR | 0o755, 0, 0, None),
        "opt/new": (stat.S_IFREG | 0o644, 0, 0, b"opt-new"),
        "run": (stat.S_IFDIR | 0o755, 0, 0, None),
        "run/fifo": (stat.S_IFIFO | 0o644, 0, 0, None),
        "tmp": (stat.S_IFDIR | 0o1777, 0, 0, None),
        "var": (stat.S_IFDIR | 0o755, 0, 0, None),
        "var/cache": (stat.S_IFLNK | 0o777, 0, 0, b"/tmp"),
    }
    if devices:
        tree["dev"] = (stat.S_IFDIR | 0o755, 0, 0, None)
        tree["dev/null"] = (stat.S_IFCHR | 0o666, 0, 0, os.makedev(1, 3))
    return tree


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(tar_bytes([member(name, data=data) for name, data in files.items()]))
    return path


def docker_archive(
    path: Path, layers: list[bytes], config: object = CONFIG, **extra: bytes
) -> Path:
    names = [f"layer{index}/layer.tar" for index in range(len(layers))]
    manifest = [{"Config": "config.json", "RepoTags": ["example/app:1.0"], "Layers": names}]
    files = {"config.json": json.dumps(config).encode(), **dict(zip(names, layers, strict=True))}
    return write_tar(path, {**files, "manifest.json": json.dumps(manifest).encode(), **extra})


def oci_archive(path: Path, layers: list[bytes]) -> Path:
    blobs: dict[str, bytes] = {}

    def blob(media_type: str, data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": blob("application/vnd.oci.image.config.v1+json", json.dumps(CONFIG).encode()),
        "layers": [
            blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(layer, mtime=0))
            for layer in layers
        ],
    }
    manifest_blob = blob(manifest_type, json.dumps(manifest).encode())
    # A multi-platform image: index.json names an index, which names the manifest.
    platforms = {"schemaVersion": 2, "manifests": [manifest_blob]}
    platform_blob = blob("application/vnd.oci.image.index.v1+json", json.dumps(platforms).encode())
    platform_blob["annotations"] = {
        "io.containerd.image.name": "example/app:1.0",
        "org.opencontainers.image.ref.name": "1.0",
    }
    index = {"schemaVersion": 2, "manifests": [platform_blob]}
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(index).encode(),
        **blobs,
    }
    return write_tar(path, files)


def content_of(entry: TreeEntry, by_path: dict[str, TreeEntry]) -> bytes:
    source = by_path[entry.link].source if entry.link is not None else entry.source
    assert source is not None
    return source.read_bytes()


def described(entries: list[TreeEntry]) -> dict[str, tuple[int, int, int, object]]:
    by_path = {entry.path: entry for entry in entries}
    tree: dict[str, tuple[int, int, int, object]] = {}
    for entry in entries:
        payload: object = None
        if stat.S_ISREG(entry.mode):
            payload = content_of(entry, by_path)
            assert entry.size == len(payload)
        elif stat.S_ISLNK(entry.mode):
            payload = entry.target
        elif stat.S_ISCHR(entry.mode) or stat.S_ISBLK(entry.mode):
            payload = entry.rdev
        tree[entry.path] = (entry.mode, entry.uid, entry.gid, payload)
    return tree


def described_on_disk(root: Path) -> dict[str, tuple[int, int, int, object]]:
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [Path(dirpath, name) for name in [*dirnames, *filenames]]
    tree: dict[str, tuple[int, int, int, object]] = {}
    for full in paths:
        st = os.lstat(full)
        payload: object = None
        if stat.S_ISREG(st.st_mode):
            payload = full.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            payload = os.readlink(full).encode()
        elif stat.S_ISCHR(st.st_mode):
            payload = st.st_rdev
        rel = full.relative_to(root).as_posix()
        tree["" if rel == "." else rel] = (st.st_mode, st.st_uid, st.st_gid, payload)
    return tree


def test_docker_archive_gives_the_final_tree_and_the_tags(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "image.tar", image_layers())
    staging = tmp_path / "staging"
    staging.mkdir()

    entries, tags = image_entries(archive, staging)

    assert tags == TAGS
    assert described(entries) == expected_tree()
    paths = [entry.path for entry in entries]
    assert paths == sorted(paths, key=lambda path: path.split("/") if path else [])
    by_path = {entry.path: entry for entry in entries}
    assert by_path["bin/sh2"].link == "bin/sh"
    assert [entry.path for entry in entries if entry.link is not None] == ["bin/sh2"]
    assert by_path[""].mtime == MTIME
    assert by_path["home"].mtime == MTIME + 5  # made for home/user, with its time
    assert by_path["home/user/notes"].mtime == MTIME
    # One staged file per content that survived; nothing of the deleted files.
    staged = sorted(path.read_bytes() for path in staging.iterdir())
    regular = [entry for entry in entries if stat.S_ISREG(entry.mode) and entry.link is None]
    assert staged == sorted(content_of(entry, by_path) for entry in regular)
    assert not {b"secret-data", b"opt-a", b"opt-b", b"cached"} & set(staged)


def test_the_image_packs_and_unpacks_to_the_same_tree(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "image.tar", image_layers(devices=AS_ROOT))
    staging = tmp_path / "staging"
    staging.mkdir()
    entries, tags = image_entries(archive, staging)
    flist = tmp_path / "img.fl"
    router = Router.from_routes([Route(0, 255, f"dir://{tmp_path}/store")])

    asyncio.run(pack_entries(entries, flist, router, tags=tags))
    with FlistReader(flist) as reader:
        assert reader.tags() == tags
        routes = reader.routes()
    target = tmp_path / "root"
    fetcher = BlockFetcher(Router.from_routes(routes))
    asyncio.run(unpack(flist, target, fetcher, allow_devices=AS_ROOT, allow_setuid=True))

    on_disk = described_on_disk(target)
    expected = expected_tree(devices=AS_ROOT)
    if not AS_ROOT:  # without root, unpack cannot give files away
        uid, gid = os.getuid(), os.getgid()
        expected = {path: (mode, uid, gid, data) for path, (mode, _, _, data) in expected.items()}
    assert on_disk == expected
    assert os.lstat(target / "bin/sh").st_ino == os.lstat(target / "bin/sh2").st_ino
    assert os.lstat(target / "etc/old-copy").st_nlink == 1
    for entry in entries:
        assert os.lstat(target / entry.path).st_mtime == entry.mtime, entry.path


def comparable(entries: list[TreeEntry]) -> list[tuple[object, ...]]:
    return [
        (e.path, e.mode, e.uid, e.gid, e.size, e.mtime, e.rdev, e.target, e.link) for e in entries
    ]


def test_oci_layout_with_gzip_layers_gives_the_same_tree(tmp_path: Path) -> None:
    layers = image_layers()
    (tmp_path / "docker").mkdir()
    (tmp_path / "oci").mkdir()
    docker = image_entries(docker_archive(tmp_path / "d.tar", layers), tmp_path / "docker")
    oci = image_entries(oci_archive(tmp_path / "o.tar", layers), tmp_path / "oci")

    assert comparable(oci[0]) == comparable(docker[0])
    assert described(oci[0]) == expected_tree()
    assert oci[1] == TAGS


def test_zstd_layers_are_read(tmp_path: Path) -> None:
    layers = [bytes(cramjam.zstd.compress(layer)) for layer in image_layers()]
    archive = docker_archive(tmp_path / "image.tar", layers)
    entries, _ = image_entries(archive, tmp_path / "staging")
    assert described(entries) == expected_tree()


def test_a_hardlink_named_before_its_target_carries_the_content(tmp_path: Path) -> None:
    layer = tar_bytes(
        [
            member("z/file", data=b"shared"),
            member("a/link", tarfile.LNKTYPE, linkname="z/file"),
            member("z/copy", tarfile.LNKTYPE, linkname="z/file"),
        ]
    )
    entries, _ = image_entries(docker_archive(tmp_path / "i.tar", [layer]), tmp_path / "s")
    links = {entry.path: entry.link for entry in entries if stat.S_ISREG(entry.mode)}
    assert links == {"a/link": None, "z/copy": "a/link", "z/file": "a/link"}
    assert [path.read_bytes() for path in (tmp_path / "s").iterdir()] == [b"shared"]


def test_manifest_json_wins_over_index_json(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "image.tar", image_layers(), **{"index.json": b"{oops"})
    entries, tags = image_entries(archive, tmp_path / "staging")
    assert described(entries) == expected_tree()
    assert tags == TAGS


def test_config_without_command_or_repo_tags(tmp_path: Path) -> None:
    config = {"config": {"User": "nobody", "Cmd": None}}
    layer = tar_bytes([member("hello", data=b"hi"), member("empty")])
    path = write_tar(
        tmp_path / "image.tar",
        {
            "c.json": json.dumps(config).encode(),
            "l.tar": layer,
            "manifest.json": json.dumps([{"Config": "c.json", "Layers": ["l.tar"]}]).encode(),
        },
    )
    entries, tags = image_entries(path, tmp_path / "staging")
    assert tags == {"env": "[]", "workdir": "/", "user": "nobody"}
    assert [entry.path for entry in entries] == ["", "empty", "hello"]
    assert [content_of(entry, {}) for entry in entries[1:]] == [b"", b"hi"]


def test_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(b"this is not an archive\n" * 100)
    with pytest.raises(ImageError, match="is not a tar archive"):
        image_entries(path, tmp_path / "staging")


def test_tar_without_a_manifest(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "image.tar", {"hello.txt": b"hi"})
    with pytest.raises(ImageError, match=r"neither manifest\.json .* nor index\.json"):
        image_entries(path, tmp_path / "staging")


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "image.tar", {"manifest.json": b"[{"})
    with pytest.raises(ImageError, match=r"manifest\.json' is not valid JSON"):
        image_entries(path, tmp_path / "staging")


def test_manifest_naming_a_missing_layer(tmp_path: Path) -> None:
    manifest = [{"Config": "c.json", "Layers": ["missing/layer.tar"]}]
    files = {"c.json": json.dumps(CONFIG).encode(), "manifest.json": json.dumps(manifest).encode()}
    path = write_tar(tmp_path / "image.tar", files)
    with pytest.raises(ImageError, match=r"layer 'missing/layer\.tar' is not in"):
        image_entries(path, tmp_path / "staging")


def test_layer_that_is_not_a_tar(tmp_path: Path) -> None:
    path = docker_archive(tmp_path / "image.tar", [b"garbage" * 200])
    with pytest.raises(ImageError, match=r"layer 'layer0/layer\.tar' is not a valid tar"):
        image_entries(path, tmp_path / "staging")


def test_truncated_gzip_layer(tmp_path: Path) -> None:
    layer = gzip.compress(image_layers()[0])
    path = docker_archive(tmp_path / "image.tar", [layer[: len(layer) // 2]])
    with pytest.raises(ImageError, match=r"cannot read layer 'layer0/layer\.tar'"):
        image_entries(path, tmp_path / "staging")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        pytest.param([member("../evil", data=b"x")], r"'\.\./evil' climbs out", id="dotdot"),
        pytest.param(
            [member("a", data=b"x"), member("a/b", data=b"y")],
            r"layer 'layer0/layer\.tar': a is not a directory",
            id="file-as-parent",
        ),
        pytest.param(
            [member("a", tarfile.LNKTYPE, linkname="nowhere")],
            r"hardlink 'a' points to 'nowhere'",
            id="dangling-hardlink",
        ),
        pytest.param([member("./")], "the image root is not a directory", id="root-file"),
    ],
)
def test_malformed_layers(tmp_path: Path, members: list[Member], message: str) -> None:
    path = docker_archive(tmp_path / "image.tar", [tar_bytes(members)])
    with pytest.raises(ImageError, match=message):
        image_entries(path, tmp_path / "staging")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"manifest.json": b"[]"}, r"manifest\.json does not list any image"),
        (
            {"manifest.json": b'[{"Config": "c.json", "Layers": "l.tar"}]'},
            r"'Layers' is missing or not a list",
        ),
        ({"index.json": b'{"manifests": []}'}, "index.json lists no manifest"),
        (
            {"index.json": b'{"manifests": [{"digest": "sha256:../../etc/passwd"}]}'},
            "malformed digest",
        ),
    ],
)
def test_malformed_manifests(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    path = write_tar(tmp_path / "image.tar", files)
    with pytest.raises(ImageError, match=message):
        image_entries(path, tmp_path / "staging")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"config": 5}, "'config' is not an object"),
        ({"config": {"Env": "A=b"}}, "Env is not a list of strings"),
        ({"config": {"Cmd": ["ok", 1]}}, "Cmd is not a list of strings"),
        ({"config": {"WorkingDir": 7}}, "WorkingDir or User is not a string"),
    ],
)
def test_malformed_configs(tmp_path: Path, config: object, message: str) -> None:
    path = docker_archive(tmp_path / "image.tar", image_layers(), config=config)
    with pytest.raises(ImageError, match=message):
        image_entries(path, tmp_path / "staging")


def test_the_cli_packs_an_image_archive(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "image.tar", image_layers(devices=os.geteuid() == 0))
    flist = tmp_path / "image.fl"
    result = run_zgrid(
        "flist",
        "pack",
        str(archive),
        "-o",
        str(flist),
        "-s",
        f"dir://{tmp_path}/store",
        "--tag",
        "owner=me",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tags"] == {**TAGS, "owner": "me"}
    with FlistReader(flist) as reader:
        assert reader.tags() == {**TAGS, "owner": "me"}
    bad = run_zgrid("flist", "pack", str(tmp_path / "image.fl"), "-o", "x.fl", "-s", "dir:///x")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "error:" in bad.stderr
