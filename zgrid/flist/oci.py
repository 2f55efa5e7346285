"""Docker (``docker save``) and OCI image-layout archives as flist entries: the image's final
file tree with the content of each surviving file staged on disk, and its run settings as tags.

Layers are read twice. The first pass reads headers only and applies every layer, whiteouts
included, to a tree in memory; the second copies out only the content that survived, so the
bytes of a file deleted by a later layer are never written.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TypeVar

import zstandard

from zgrid.flist.errors import ImageError
from zgrid.flist.tree import TreeEntry

__all__ = ["image_entries"]

_T = TypeVar("_T")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_DIR_MODE = stat.S_IFDIR | 0o755
_COPY_CHUNK = 1 << 20
_MAX_INDEX_DEPTH = 4  # an OCI index may point to further indexes (one per platform)
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


@dataclass(eq=False, slots=True)
class _Content:
    """A regular file's bytes: member ``index`` of layer ``layer``. The names of one file
    (tar hardlinks) share one instance, so they are found again by identity."""

    layer: int
    index: int
    size: int


@dataclass(slots=True)
class _Node:
    mode: int
    uid: int
    gid: int
    mtime: int
    rdev: int = 0
    target: bytes | None = None
    content: _Content | None = None
    children: dict[str, _Node] | None = None  # directories only


def _split(name: str) -> tuple[str, ...]:
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _member_parts(name: str, where: str) -> tuple[str, ...]:
    if "\0" in name:
        raise ImageError(f"{where}: member name {name!r} contains NUL")
    parts = _split(name)
    if ".." in parts:
        raise ImageError(f"{where}: member {name!r} climbs out of the image root with '..'")
    try:
        name.encode()
    except UnicodeEncodeError as exc:
        raise ImageError(f"{where}: member name {name!r} is not UTF-8") from exc
    return parts


class _Tree:
    """The file system as the layers applied so far leave it."""

    def __init__(self) -> None:
        # The root's metadata comes from a layer's "./" member when there is one.
        self.root = _Node(_DIR_MODE, 0, 0, 0, children={})

    def find(self, parts: tuple[str, ...]) -> _Node | None:
        node: _Node | None = self.root
        for name in parts:
            if node is None or node.children is None:
                return None
            node = node.children.get(name)
        return node

    def directory(self, parts: tuple[str, ...], mtime: int, where: str) -> dict[str, _Node]:
        """The children of directory ``parts``; missing directories are made, as docker does."""
        node = self.root
        for depth, name in enumerate(parts):
            assert node.children is not None
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(_DIR_MODE, 0, 0, mtime, children={})
            elif child.children is None:
                raise ImageError(f"{where}: {'/'.join(parts[: depth + 1])} is not a directory")
            node = child
        assert node.children is not None
        return node.children

    def whiteout(self, parts: tuple[str, ...]) -> None:
        parent = self.find(parts[:-1])
        if parent is None or parent.children is None:
            return
        name = parts[-1]
        if name == _OPAQUE:
            parent.children.clear()
        elif not name.startswith(_WHITEOUT + _WHITEOUT):  # other .wh..wh. names are aufs's own
            parent.children.pop(name[len(_WHITEOUT) :], None)

    def put(self, parts: tuple[str, ...], node: _Node, where: str) -> None:
        if not parts:
            if node.children is None:
                raise ImageError(f"{where}: the image root is not a directory")
            old = self.root
        else:
            siblings = self.directory(parts[:-1], node.mtime, where)
            found = siblings.get(parts[-1])
            if found is None or found.children is None or node.children is None:
                siblings[parts[-1]] = node  # a non-directory takes the old subtree with it
                return
            old = found
        old.mode, old.uid, old.gid, old.mtime = node.mode, node.uid, node.gid, node.mtime


def _node(info: tarfile.TarInfo, layer: int, index: int, where: str) -> _Node:
    perm = info.mode & 0o7777  # some writers put type bits in the mode field as well
    node = _Node(perm, info.uid, info.gid, int(info.mtime))
    if info.isreg():
        node.mode |= stat.S_IFREG
        node.content = _Content(layer, index, info.size)
    elif info.isdir():
        node.mode |= stat.S_IFDIR
        node.children = {}
    elif info.issym():
        node.mode |= stat.S_IFLNK
        node.target = info.linkname.encode("utf-8", "surrogateescape")
    elif info.ischr() or info.isblk():
        node.mode |= stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        node.rdev = os.makedev(info.devmajor, info.devminor)
    elif info.isfifo():
        node.mode |= stat.S_IFIFO
    else:
        raise ImageError(f"{where}: {info.name!r} has the unsupported tar type {info.type!r}")
    return node


def _hardlink(tree: _Tree, info: tarfile.TarInfo, where: str) -> _Node:
    target = tree.find(_member_parts(info.linkname, where))
    if target is None or target.children is not None:
        raise ImageError(
            f"{where}: hardlink {info.name!r} points to {info.linkname!r}, which is not a file"
        )
    mode = stat.S_IFMT(target.mode) | info.mode & 0o7777
    return replace(target, mode=mode, uid=info.uid, gid=info.gid, mtime=int(info.mtime))


class _Archive:
    """The outer tar: its members by normalised name, opened for random access."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # kept open for the member reads of both passes; closed by close()
            self._tar = tarfile.open(  # noqa: SIM115
                path, "r:*", encoding="utf-8", errors="surrogateescape"
            )
            self._members = {"/".join(_split(info.name)): info for info in self._tar}
        except tarfile.ReadError as exc:
            raise ImageError(f"{path} is not a tar archive, or is cut short ({exc})") from exc
        except _READ_ERRORS as exc:
            raise ImageError(f"cannot read {path}: {exc}") from exc

    def close(self) -> None:
        self._tar.close()

    def has(self, name: str) -> bool:
        return "/".join(_split(name)) in self._members

    def open(self, name: str, what: str) -> IO[bytes]:
        info = self._members.get("/".join(_split(name)))
        if info is None:
            raise ImageError(f"{what} {name!r} is not in {self.path}")
        try:
            handle = self._tar.extractfile(info)
        except KeyError as exc:  # a symlink or hardlink member whose target is missing
            raise ImageError(f"{what} {name!r} links to a member not in {self.path}") from exc
        if handle is None:
            raise ImageError(f"{what} {name!r} is not a file in {self.path}")
        return handle

    def json(self, name: str, what: str) -> object:
        try:
            with self.open(name, what) as handle:
                return json.loads(handle.read())
        except ValueError as exc:
            raise ImageError(f"{what} {name!r} is not valid JSON: {exc}") from exc
        except _READ_ERRORS as exc:
            raise ImageError(f"cannot read {what} {name!r}: {exc}") from exc

    @contextlib.contextmanager
    def layer(self, name: str) -> Iterator[tarfile.TarFile]:
        """The layer as a streaming tar, uncompressed as its first bytes say."""
        where = f"layer {name!r}"
        errors: tuple[type[BaseException], ...] = _READ_ERRORS  # read when an error is raised
        try:
            with self.open(name, "layer") as raw:
                magic = raw.read(len(_ZSTD_MAGIC))
                raw.seek(0)
                stream: IO[bytes] | gzip.GzipFile = raw
                if magic.startswith(_GZIP_MAGIC):
                    stream = gzip.GzipFile(fileobj=raw, mode="rb")
                elif magic == _ZSTD_MAGIC:
                    errors += (zstandard.ZstdError,)
                    # Chunked zstd layers hold several frames; all of them are the layer.
                    stream = zstandard.ZstdDecompressor().stream_reader(
                        raw, read_across_frames=True
                    )
                with tarfile.open(
                    fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
                ) as tar:
                    yield tar
        except tarfile.ReadError as exc:
            raise ImageError(f"{where} is not a valid tar archive ({exc})") from exc
        except errors as exc:
            raise ImageError(f"cannot read {where}: {exc}") from exc


def _get(document: object, key: str, kind: type[_T], where: str) -> _T:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, kind):
        raise ImageError(f"{where}: {key!r} is missing or not a {kind.__name__}")
    return value


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ImageError(f"{what} is not a list of strings")
    return value


def _blob(descriptor: object, where: str) -> str:
    match = _DIGEST.fullmatch(_get(descriptor, "digest", str, where))
    if match is None:
        raise ImageError(f"{where}: {descriptor!r} has a malformed digest")
    return f"blobs/{match[1]}/{match[2]}"


def _locate(archive: _Archive) -> tuple[str, list[str], str | None]:
    """The first image's config blob, its layers (lowest first) and its name."""
    if archive.has("manifest.json"):
        images = archive.json("manifest.json", "the docker manifest")
        if not isinstance(images, list) or not images:
            raise ImageError("manifest.json does not list any image")
        where = "manifest.json"
        config = _get(images[0], "Config", str, where)
        layers = _strings(_get(images[0], "Layers", list, where), "manifest.json's Layers")
        repo_tags = _strings(images[0].get("RepoTags") or [], "manifest.json's RepoTags")
        return config, layers, repo_tags[0] if repo_tags else None
    if not archive.has("index.json"):
        raise ImageError(
            f"{archive.path} holds neither manifest.json (docker save) nor index.json (OCI)"
        )
    where = "index.json"
    document = archive.json(where, "the OCI index")
    name: str | None = None
    for _ in range(_MAX_INDEX_DEPTH):
        manifests = _get(document, "manifests", list, where)
        if not manifests:
            raise ImageError(f"{where} lists no manifest")
        annotations = manifests[0].get("annotations") if isinstance(manifests[0], dict) else None
        if name is None and isinstance(annotations, dict):
            # containerd keeps the full reference; ref.name may be a bare tag
            found = annotations.get("io.containerd.image.name") or annotations.get(
                "org.opencontainers.image.ref.name"
            )
            name = found if isinstance(found, str) else None
        where = _blob(manifests[0], where)
        document = archive.json(where, "the OCI manifest")
        if not isinstance(document, dict) or "manifests" not in document:
            config = _blob(_get(document, "config", dict, where), where)
            layers = [_blob(layer, where) for layer in _get(document, "layers", list, where)]
            return config, layers, name
    raise ImageError(f"index.json nests more than {_MAX_INDEX_DEPTH} indexes")


def _json_list(value: object, what: str) -> str:
    return json.dumps(_strings(value, what), separators=(",", ":"))


def _tags(config: object, image: str | None) -> dict[str, str]:
    settings = config.get("config") if isinstance(config, dict) else None
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ImageError("the image config's 'config' is not an object")
    tags: dict[str, str] = {}
    for tag, key in (("entrypoint", "Entrypoint"), ("cmd", "Cmd")):
        if settings.get(key) is not None:
            tags[tag] = _json_list(settings[key], f"the image config's {key}")
    tags["env"] = _json_list(settings.get("Env") or [], "the image config's Env")
    workdir, user = settings.get("WorkingDir") or "/", settings.get("User") or ""
    if not isinstance(workdir, str) or not isinstance(user, str):
        raise ImageError("the image config's WorkingDir or User is not a string")
    tags["workdir"] = workdir
    if user:
        tags["user"] = user
    if image:
        tags["image"] = image
    return tags


def _apply_layer(tree: _Tree, archive: _Archive, layer: int, name: str) -> None:
    where = f"layer {name!r}"
    with archive.layer(name) as tar:
        members = [(index, _member_parts(info.name, where), info) for index, info in enumerate(tar)]
    # Whiteouts hide lower layers only, whatever their place among this layer's members.
    for _, parts, _ in members:
        if parts and parts[-1].startswith(_WHITEOUT):
            tree.whiteout(parts)
    for index, parts, info in members:
        if parts and parts[-1].startswith(_WHITEOUT):
            tree.directory(parts[:-1], int(info.mtime), where)
        elif info.islnk():
            tree.put(parts, _hardlink(tree, info, where), where)
        else:
            tree.put(parts, _node(info, layer, index, where), where)


def _entries(tree: _Tree, staging: Path) -> tuple[list[TreeEntry], list[tuple[_Content, Path]]]:
    """The tree parent-first, names sorted, and which content goes to which staging file."""
    entries: list[TreeEntry] = []
    staged: list[tuple[_Content, Path]] = []
    first_names: dict[_Content, str] = {}
    pending: list[tuple[str, _Node]] = [("", tree.root)]
    while pending:
        path, node = pending.pop()
        entry = TreeEntry(
            path=path,
            mode=node.mode,
            uid=node.uid,
            gid=node.gid,
            size=len(node.target) if node.target is not None else 0,
            mtime=node.mtime,
            ctime=node.mtime,
            rdev=node.rdev,
            target=node.target,
        )
        content = node.content
        if content is not None:
            entry.size = content.size
            # The first name in output order carries the content, later ones link to it.
            entry.link = first_names.get(content)
            if entry.link is None:
                first_names[content] = path
                entry.source = staging / str(len(staged))
                staged.append((content, entry.source))
        entries.append(entry)
        if node.children:
            children = sorted(node.children.items(), reverse=True)
            pending.extend((f"{path}/{name}" if path else name, child) for name, child in children)
    return entries, staged


def _write(path: Path, source: IO[bytes] | None, where: str) -> None:
    try:
        with open(path, "xb") as out:
            while source is not None and (chunk := source.read(_COPY_CHUNK)):
                out.write(chunk)
    except OSError as exc:
        raise ImageError(f"cannot stage {where} into {path}: {exc}") from exc


def _stage(archive: _Archive, layers: list[str], staged: list[tuple[_Content, Path]]) -> None:
    wanted: dict[int, dict[int, Path]] = {}
    for content, path in staged:
        if content.size:
            wanted.setdefault(content.layer, {})[content.index] = path
        else:
            _write(path, None, "an empty file")
    for layer, paths in sorted(wanted.items()):
        where = f"layer {layers[layer]!r}"
        with archive.layer(layers[layer]) as tar:
            for index, info in enumerate(tar):
                if index in paths:
                    _write(paths.pop(index), tar.extractfile(info), f"{info.name!r} of {where}")
                    if not paths:
                        break
        if paths:
            raise ImageError(f"{where} changed between its two reads")


def image_entries(archive: Path, staging: Path) -> tuple[list[TreeEntry], dict[str, str]]:
    """The final file tree of the first image in ``archive`` (parents first) and its tags.

    The content of every regular file is written to a file in ``staging`` (an empty scratch
    directory that must outlive the entries); each regular entry's ``source`` points there.
    """
    image = _Archive(archive)
    try:
        config, layers, name = _locate(image)
        for layer in layers:
            image.open(layer, "layer").close()  # a missing layer is known before any work
        tags = _tags(image.json(config, "the image config"), name)
        tree = _Tree()
        for index, layer in enumerate(layers):
            _apply_layer(tree, image, index, layer)
        entries, staged = _entries(tree, staging)
        try:
            staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageError(f"cannot use {staging} for staging: {exc}") from exc
        _stage(image, layers, staged)
    finally:
        image.close()
    return entries, tags
