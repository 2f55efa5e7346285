"""Signed hub requests under attack: replays, re-targeted requests, forged and stalled
uploads, too many uploads at once, reads while pushes are checked, and a hub that lies."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import zgrid
from tests.chain.conftest import LedgerProcess
from tests.flist.conftest import HubProcess, Twin, running_hub
from tests.flist.test_hostile import chained_escape, hostile_flist
from tests.flist.test_hub import (
    client_of,
    error_of,
    host_of,
    pack,
    published,
    signed_headers,
    signed_put,
)
from tests.processes import ZGRID, free_port
from zgrid.flist import FlistWriter, HubError
from zgrid.flist.hub import FlistStorage, HubRefused, sign_flist
from zgrid.identity import blake2b256

# -- helpers ---------------------------------------------------------------------------------


def flist_put(
    hub: HubProcess, twin: Twin, name: str, body: bytes, **options: object
) -> tuple[str, dict[str, str]]:
    """The URL and headers of a signed push of ``body`` as ``twin``/``name``."""
    path = f"/flists/{twin.twin_id}/{name}"
    headers = signed_headers(
        hub,
        "PUT",
        path,
        body,
        identity=twin.identity,
        twin_id=twin.twin_id,
        **options,  # type: ignore[arg-type]
    )
    headers["X-Flist-Signature"] = sign_flist(
        twin.identity, twin.twin_id, name, blake2b256(body).hex()
    )
    return f"{hub.url}{path}", headers


def open_upload(hub: HubProcess, path: str, headers: dict[str, str], length: int) -> socket.socket:
    """A raw connection that sends a request's headers (declaring ``length`` bytes of
    body) and nothing more: what a slow or hostile sender does."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    lines = [f"PUT {path} HTTP/1.1", f"Host: {host_of(hub)}", f"Content-Length: {length}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_answer(sock: socket.socket, *, timeout: float) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the answer on a raw connection."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, json.loads(rest[:length])


def pushed(hub: HubProcess, twin: Twin, tmp_path: Path, label: str) -> bytes:
    """Push a small tree as ``twin``/``label``.fl; return the published bytes."""
    _, flist, router = pack(tmp_path, label)

    async def push() -> None:
        async with client_of(hub, twin) as client:
            await client.push(flist, f"{label}.fl", router)

    asyncio.run(push())
    return published(hub, flist)


# -- 1: replays and re-targeting ---------------------------------------------------------------


def test_a_captured_put_or_delete_cannot_be_replayed_even_after_a_restart(
    tmp_path: Path, hub_ledger: LedgerProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    with running_hub(tmp_path, hub_ledger.url) as hub:
        old = pushed(hub, alice, tmp_path, "app")
        url, headers = flist_put(hub, alice, "app.fl", old)
        first = httpx.put(url, content=old, headers=headers)  # the request an attacker saw
        assert first.status_code == 200, first.text
        pushed(hub, alice, tmp_path / "v2", "app")  # a newer version replaces it ...
        pushed(hub, alice, tmp_path, "keep")
        newer = httpx.get(f"{hub.url}/flists/{alice.twin_id}/app.fl").headers["x-flist-hash"]

        replay = httpx.put(url, content=old, headers=headers)  # ... and the replay rolls back
        assert replay.status_code == 401
        assert "was used already" in error_of(replay, "unauthorized")

        path = f"/flists/{alice.twin_id}/keep.fl"
        delete = signed_headers(hub, "DELETE", path, identity=alice.identity, twin_id=alice.twin_id)
        assert httpx.delete(f"{hub.url}{path}", headers=delete).status_code == 200
        pushed(hub, alice, tmp_path / "again", "keep")
        replay = httpx.delete(f"{hub.url}{path}", headers=delete)
        assert replay.status_code == 401
        assert "was used already" in error_of(replay)

        hub.stop()
        hub.start()  # the nonces are on disk: a restart does not reopen the window
        for method, target, body, sent in (
            ("PUT", url, old, headers),
            ("DELETE", f"{hub.url}{path}", b"", delete),
        ):
            replay = httpx.request(method, target, content=body, headers=sent)
            assert replay.status_code == 401, replay.text
            assert "was used already" in error_of(replay)
        listed = {
            e["name"]: e["hash"] for e in httpx.get(f"{hub.url}/flists/{alice.twin_id}").json()
        }
        assert listed["app.fl"] == newer
        assert "keep.fl" in listed


def test_a_request_sent_elsewhere_than_it_was_signed_for_is_refused(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    body = pushed(hub, alice, tmp_path, "there")
    pushed(hub, alice, tmp_path / "b", "here")

    # Signed for one path, sent to another.
    url, headers = flist_put(hub, alice, "there.fl", body)
    moved = httpx.put(url.replace("there.fl", "here.fl"), content=body, headers=headers)
    assert moved.status_code == 401
    assert "bad signature" in error_of(moved, "unauthorized")

    # Signed with a query, sent without it, and the other way round.
    path = f"/flists/{alice.twin_id}/here.fl"
    with_query = signed_headers(
        hub, "DELETE", path, identity=alice.identity, twin_id=alice.twin_id, query="a=1"
    )
    response = httpx.delete(f"{hub.url}{path}", headers=with_query)
    assert response.status_code == 401
    plain = signed_headers(hub, "DELETE", path, identity=alice.identity, twin_id=alice.twin_id)
    response = httpx.delete(f"{hub.url}{path}?a=2", headers=plain)
    assert response.status_code == 401

    # Signed for another host (another hub), or sent with another Host header.
    other = f"localhost:{hub.port}"
    for signed_for, sent_as in ((other, other), (host_of(hub), other)):
        headers = signed_headers(
            hub, "DELETE", path, identity=alice.identity, twin_id=alice.twin_id, host=signed_for
        )
        response = httpx.delete(f"{hub.url}{path}", headers={**headers, "Host": sent_as})
        assert response.status_code == 401, response.text
    # What a PUT signed does not sign a DELETE.
    url, headers = flist_put(hub, alice, "here.fl", b"")
    response = httpx.delete(url, headers=headers)
    assert response.status_code == 401
    assert {e["name"] for e in httpx.get(f"{hub.url}/flists/{alice.twin_id}").json()} == {
        "there.fl",
        "here.fl",
    }


# -- 2: uploads checked before their body, bounded, timed out --------------------------------


def test_a_forged_upload_is_refused_before_its_body_is_read(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, mallory = new_twin(), new_twin()
    body = b"x" * 1000
    _, headers = flist_put(hub, mallory, "evil.fl", body)  # mallory's key, alice's name
    headers["Authorization"] = headers["Authorization"].replace(
        f"twin={mallory.twin_id}", f"twin={alice.twin_id}"
    )
    sock = open_upload(hub, f"/flists/{alice.twin_id}/evil.fl", headers, 60 << 20)
    try:
        started = time.monotonic()
        status, document = read_answer(sock, timeout=10)  # no byte of the 60 MiB was sent
        assert time.monotonic() - started < 5
    finally:
        sock.close()
    assert status == 401
    assert "bad signature" in document["error"]["message"]  # type: ignore[index]
    assert list((hub.data / "tmp").iterdir()) == []

    # A body that is not the one the signature declares is refused once it has arrived.
    url, headers = flist_put(hub, alice, "swap.fl", body)
    response = httpx.put(url, content=body[:-1] + b"y", headers=headers)
    assert response.status_code == 400
    assert "declared BLAKE2b-256" in error_of(response, "body_mismatch")


def test_uploads_are_bounded_per_twin_and_in_total_and_stalled_bodies_time_out(
    tmp_path: Path, hub_ledger: LedgerProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob, carol = new_twin(), new_twin(), new_twin()
    extra = ("--uploads", "2", "--uploads-per-twin", "1", "--body-timeout", "2")
    body = b"\0" * 100_000
    with running_hub(tmp_path, hub_ledger.url, extra=extra) as hub:

        def start(twin: Twin, name: str) -> socket.socket:
            url, headers = flist_put(hub, twin, name, body)
            sock = open_upload(hub, url.removeprefix(hub.url), headers, len(body))
            sock.sendall(body[:1000])  # then nothing: a stalled sender
            return sock

        held = [start(alice, "a.fl")]
        time.sleep(0.5)
        url, headers = flist_put(hub, alice, "a2.fl", body)
        second = httpx.put(url, content=body, headers=headers)
        assert second.status_code == 429
        assert "at most 1 at once" in error_of(second, "too_many_uploads")
        held.append(start(bob, "b.fl"))
        time.sleep(0.5)
        url, headers = flist_put(hub, carol, "c.fl", body)
        third = httpx.put(url, content=body, headers=headers)
        assert third.status_code == 503
        assert "takes 2 flist uploads at once" in error_of(third, "busy")
        try:
            for sock in held:
                status, document = read_answer(sock, timeout=10)
                assert status == 408
                assert document["error"]["code"] == "timeout"  # type: ignore[index]
        finally:
            for sock in held:
                sock.close()
        # The stalled uploads gave their slots back.
        url, headers = flist_put(hub, carol, "c.fl", body)
        assert httpx.put(url, content=body, headers=headers).status_code == 400  # not an flist


# -- 3: reads while pushes are checked -------------------------------------------------------


def wide_flist(path: Path, inodes: int) -> None:
    """An flist of ``inodes`` entries without blocks (empty files and directories)."""
    writer = FlistWriter(path)
    root = writer.add_inode(parent=0, name="/", size=0, uid=0, gid=0, mode=stat.S_IFDIR | 0o755)
    parent = root
    for index in range(inodes - 1):
        if index % 100 == 0:
            parent = writer.add_inode(
                parent=root, name=f"d{index}", size=0, uid=0, gid=0, mode=stat.S_IFDIR | 0o755
            )
        else:
            writer.add_inode(
                parent=parent, name=f"f{index}", size=0, uid=0, gid=0, mode=stat.S_IFREG | 0o644
            )
    writer.close()


def test_reads_do_not_wait_behind_the_checks_of_pushes(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    twins = [new_twin() for _ in range(4)]
    reader = twins[0]
    pushed(hub, reader, tmp_path, "small")
    flist = tmp_path / "wide.fl"
    wide_flist(flist, 10_000)
    body = published(hub, flist)
    stop = threading.Event()
    latencies: list[float] = []

    def read_all_the_time() -> None:
        with httpx.Client(base_url=hub.url, timeout=60) as http:
            while not stop.is_set():
                started = time.monotonic()
                response = http.get(f"/flists/{reader.twin_id}/small.fl")
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200

    def push(twin: Twin, name: str) -> int:
        url, headers = flist_put(hub, twin, name, body)
        return httpx.put(url, content=body, headers=headers, timeout=120).status_code

    readers = threading.Thread(target=read_all_the_time)
    readers.start()
    try:
        results: list[int] = []
        pushes = [
            threading.Thread(target=lambda t=t, n=n: results.append(push(t, f"wide{n}.fl")))
            for t in twins
            for n in range(2)
        ]
        started = time.monotonic()
        for thread in pushes:
            thread.start()
        for thread in pushes:
            thread.join(timeout=300)
        pushing = time.monotonic() - started
    finally:
        stop.set()
        readers.join(timeout=60)
    assert sorted(results) == [200] * 8
    assert len(latencies) > 10
    worst = max(latencies)
    print(f"8 pushes of 10,000 inodes took {pushing:.1f} s; slowest read {worst * 1000:.0f} ms")
    assert worst < max(1.0, pushing / 4), (worst, pushing)


# -- 4: the publisher's signature, not the hub's word ----------------------------------------


def test_a_pull_refuses_what_the_publisher_did_not_sign(
    tmp_path: Path, hub_ledger: LedgerProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob = new_twin(), new_twin()
    with running_hub(tmp_path, hub_ledger.url) as hub:
        pushed(hub, alice, tmp_path, "app")
        pushed(hub, bob, tmp_path / "bob", "app")
        pushed(hub, bob, tmp_path / "bob", "other")

        async def pull(owner: int, name: str, dest: str = "") -> None:
            async with client_of(hub) as client:
                await client.pull(owner, name, tmp_path / (dest or f"pulled-{owner}-{name}"))

        asyncio.run(pull(bob.twin_id, "app.fl", "before.fl"))
        index = sqlite3.connect(hub.data / "hub.db")
        row = index.execute(
            "SELECT hash, size, signature FROM flist WHERE owner = ? AND name = 'app.fl'",
            (alice.twin_id,),
        ).fetchone()
        # The hub serves alice's flist (with alice's signature) as bob's app.fl.
        index.execute(
            "UPDATE flist SET hash = ?, size = ?, signature = ? WHERE owner = ? AND name = ?",
            (*row, bob.twin_id, "app.fl"),
        )
        # And other bytes, under their own hash, as bob's other.fl (the signature kept).
        other = index.execute(
            "SELECT hash FROM flist WHERE owner = ? AND name = 'other.fl'", (bob.twin_id,)
        ).fetchone()[0]
        forged = hub.data / "flists" / other[:2] / f"{other}.fl"
        content = forged.read_bytes() + b"\0" * 512
        new_hash = blake2b256(content).hex()
        (hub.data / "flists" / new_hash[:2]).mkdir(exist_ok=True)
        (hub.data / "flists" / new_hash[:2] / f"{new_hash}.fl").write_bytes(content)
        index.execute(
            "UPDATE flist SET hash = ?, size = ? WHERE owner = ? AND name = 'other.fl'",
            (new_hash, len(content), bob.twin_id),
        )
        index.commit()
        index.close()
        for name in ("app.fl", "other.fl"):
            with pytest.raises(HubError, match=f"that twin {bob.twin_id} did not sign"):
                asyncio.run(pull(bob.twin_id, name))
            assert not (tmp_path / f"pulled-{bob.twin_id}-{name}").exists()
        asyncio.run(pull(alice.twin_id, "app.fl"))


# -- 5 and 6: durable flist files; symlinks resolved through the tree ------------------------


def test_a_published_flist_is_synced_before_it_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FlistStorage(tmp_path / "hub")
    upload = storage.temp_path()
    upload.write_bytes(b"flist bytes")
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    flist_hash = blake2b256(b"flist bytes").hex()
    record = storage.store(7, "a.fl", upload, flist_hash=flist_hash, signature="00")
    storage.close()
    assert len(synced) >= 2  # the file, then its directory
    assert storage.path_of(record.hash).read_bytes() == b"flist bytes"


def test_a_push_whose_symlinks_escape_through_other_symlinks_is_refused(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    flist = hostile_flist(tmp_path, chained_escape)
    url, headers = flist_put(hub, alice, "escape.fl", published(hub, flist))
    response = httpx.put(url, content=published(hub, flist), headers=headers)
    assert response.status_code == 400
    assert "x: symlink points outside the tree" in error_of(response, "bad_flist")


# -- 8: one error shape; start failures ------------------------------------------------------


def test_hub_run_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = subprocess.run(
            [ZGRID, "hub", "run", "--data", str(tmp_path / "hub"), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        taken.close()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot listen on 127.0.0.1:")
    assert "in use" in lines[0]


def test_client_reads_the_one_error_shape(tmp_path: Path, hub: HubProcess) -> None:
    async def scenario() -> None:
        async with client_of(hub) as client:
            with pytest.raises(HubRefused) as caught:
                await client.pull(999_999_999, "none.fl", tmp_path / "x.fl")
            raise AssertionError(caught.value)

    with pytest.raises(HubError, match="twin 999999999 is not on the ledger"):
        asyncio.run(scenario())

    async def by_hash() -> None:
        async with client_of(hub) as client:
            await client.pull_by_hash("0" * 64, tmp_path / "x.fl")

    with pytest.raises(HubRefused) as caught:
        asyncio.run(by_hash())
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert caught.value.message == f"no flist has the hash {'0' * 64}"


# -- 9: what the OpenAPI says is what the hub sends ------------------------------------------

_BINARY = {"get_block_in_dir", "head_block_in_dir", "get_block", "head_block"}
_BINARY |= {"get_flist", "get_flist_by_hash"}
_SIGNED = {"put_block": {401, 408, 413, 429, 503}, "delete_flist": {401, 403, 408, 413, 503}}
_SIGNED["push_flist"] = {401, 403, 408, 409, 413, 429, 503}


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation["operationId"] not in found, (method, path)
            found[operation["operationId"]] = operation
    return found


def test_the_openapi_documents_every_answer_of_the_hub(hub: HubProcess) -> None:
    spec = httpx.get(f"{hub.url}/openapi.json").json()
    operations = _operations(spec)  # every GET and HEAD route has an operationId of its own
    assert len(operations) == 13
    assert "422" not in json.dumps(spec)
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for name, operation in operations.items():
        answers = operation["responses"]
        ok = answers["200"]["content"]
        if name in _BINARY:
            assert ok == {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        else:  # a typed model, never an unnamed object
            (schema,) = [ok["application/json"]["schema"]]
            assert "$ref" in schema or schema["items"].get("$ref") or schema["items"]["type"]
        takes = operation.get("parameters") or "requestBody" in operation
        for status in {"500", *(["400"] if takes else [])} | {
            str(s) for s in _SIGNED.get(name, ())
        }:
            assert answers[status]["content"] == {"application/json": {"schema": error}}, name
        assert ("security" in operation) == (name in _SIGNED), name
    headers = {p["name"] for p in operations["push_flist"]["parameters"] if p["in"] == "header"}
    assert headers == {"X-Content-Blake2b", "X-Flist-Signature"}
    body = operations["push_flist"]["requestBody"]["content"]
    assert list(body) == ["application/octet-stream"]
    assert list(spec["components"]["securitySchemes"]) == ["ZgridSignature"]
    flist_headers = operations["get_flist"]["responses"]["200"]["headers"]
    assert set(flist_headers) == {
        "X-Flist-Hash",
        "X-Flist-Owner",
        "X-Flist-Name",
        "X-Flist-Signature",
    }


def test_json_answers_keep_their_bytes(hub: HubProcess, new_twin: Callable[[], Twin]) -> None:
    alice = new_twin()
    health = httpx.get(f"{hub.url}/health")
    blocks = json.dumps(f"{hub.url}/blocks")
    assert (
        health.content
        == (
            f'{{"status":"ok","version":{json.dumps(zgrid.__version__)},"blocks":{blocks}}}'
        ).encode()
    )
    data = b"a block"
    id_hex = blake2b256(data).hex()
    stored = signed_put(
        hub, f"/blocks/{id_hex}", data, identity=alice.identity, twin_id=alice.twin_id
    )
    assert stored.content == f'{{"id":"{id_hex}","size":7}}'.encode()
    assert httpx.get(f"{hub.url}/flists/{alice.twin_id}").content == b"[]"
    missing = httpx.post(f"{hub.url}/blocks/missing", content=json.dumps([id_hex, "0" * 64]))
    assert missing.content == f'["{"0" * 64}"]'.encode()


def test_a_405_names_every_method_of_its_path(hub: HubProcess) -> None:
    """It named only those of the first route that matched: ``Allow: GET`` for a block,
    which takes HEAD and PUT as well."""
    cases = {
        ("OPTIONS", f"/blocks/{'0' * 64}"): "GET, HEAD, PUT",
        ("DELETE", f"/blocks/00/{'0' * 64}"): "GET, HEAD",
        ("POST", "/flists/1/app.fl"): "DELETE, GET, PUT",
        ("PATCH", "/health"): "GET",
    }
    for (method, path), allowed in cases.items():
        response = httpx.request(method, f"{hub.url}{path}")
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert f"{method} is not allowed on {path}" in error_of(response, "method_not_allowed")


def test_fixed_paths_are_not_taken_for_a_block_id_or_a_twin(hub: HubProcess) -> None:
    """``/blocks/missing`` and ``/flists/by-hash/{hash}`` were also matched by the routes of
    ``/blocks/{id}`` and ``/flists/{twin}/{name}``: PUT there answered 400 (bad block id,
    twin not an integer) instead of 405."""
    for method in ("GET", "HEAD", "PUT"):
        response = httpx.request(method, f"{hub.url}/blocks/missing")
        assert (response.status_code, response.headers["allow"]) == (405, "POST"), method
    for method in ("PUT", "DELETE"):
        response = httpx.request(method, f"{hub.url}/flists/by-hash/{'0' * 64}")
        assert (response.status_code, response.headers["allow"]) == (405, "GET"), method
    # What is not the fixed word is still a block id or a twin, refused as before.
    assert error_of(httpx.get(f"{hub.url}/blocks/missingx"), "bad_block_id")
    assert httpx.get(f"{hub.url}/flists/by-hash").status_code == 400
    assert httpx.get(f"{hub.url}/flists/by-hashes/x.fl").status_code == 400
