"""The flist hub with real processes: a ledger with twins, a hub on a free port, real packs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import zgrid.flist.hub as hub_package
from tests.chain.conftest import LedgerProcess
from tests.flist.conftest import HubProcess, Twin, running_hub
from tests.processes import free_port
from tests.zdb.conftest import ZdbProcess
from zgrid.chain import ChainClient
from zgrid.cli.hub import app as hub_cli
from zgrid.flist import (
    BlockFetcher,
    FlistReader,
    FlistWriter,
    HubError,
    Route,
    Router,
    encode_block,
    open_store,
    pack_directory,
    unpack,
)
from zgrid.flist.hub import HubClient, HubRefused, authorization, sign_flist
from zgrid.flist.hub.ingest import point_at_hub
from zgrid.identity import Identity, blake2b256

# -- helpers ---------------------------------------------------------------------------------


def dir_router(path: Path) -> Router:
    return Router([(0, 255, open_store(f"dir://{path}"))])


def make_tree(root: Path, *, random_bytes: int = 0) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("zgrid\n")
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho hi\n" * 1000)
    tool.chmod(0o755)
    (root / "big").write_bytes(bytes(range(256)) * 4096 * 3)  # 3 MiB, repeating
    (root / "link").symlink_to("etc/hostname")
    (root / "empty").mkdir()
    if random_bytes:
        (root / "random").write_bytes(secrets.token_bytes(random_bytes))
    return root


def pack(tmp: Path, label: str, *, random_bytes: int = 0) -> tuple[Path, Path, Router]:
    """A packed tree: (source directory, .fl, router of the local block store)."""
    source = make_tree(tmp / f"{label}-src", random_bytes=random_bytes)
    router = dir_router(tmp / f"{label}-blocks")
    flist = tmp / f"{label}.fl"
    asyncio.run(pack_directory(source, flist, router))
    return source, flist, router


def snapshot(root: Path) -> dict[str, tuple[str, int, bytes]]:
    found: dict[str, tuple[str, int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(info.st_mode):
            found[rel] = ("link", 0, os.readlink(path).encode())
        elif stat.S_ISDIR(info.st_mode):
            found[rel] = ("dir", stat.S_IMODE(info.st_mode), b"")
        else:
            found[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


class LedgerHubClient(HubClient):
    """A HubClient that closes the ledger client it was given."""

    async def close(self) -> None:
        await super().close()
        if self.ledger is not None:
            await self.ledger.close()


def client_of(hub: HubProcess, twin: Twin | None = None, **options: object) -> HubClient:
    ledger = ChainClient(hub.ledger_url)
    if twin is None:
        return LedgerHubClient(hub.url, ledger=ledger, **options)  # type: ignore[arg-type]
    return LedgerHubClient(
        hub.url,
        identity=twin.identity,
        twin_id=twin.twin_id,
        ledger=ledger,
        **options,  # type: ignore[arg-type]
    )


def host_of(hub: HubProcess) -> str:
    return hub.url.removeprefix("http://")


def signed_headers(
    hub: HubProcess,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    identity: Identity,
    twin_id: int,
    query: str = "",
    host: str | None = None,
    signed_body: bytes | None = None,
    now: int | None = None,
) -> dict[str, str]:
    """The headers of a request signed by hand, to send what a client never would."""
    return authorization(
        identity,
        twin_id,
        method=method,
        host=host or host_of(hub),
        path=path,
        query=query,
        body_hash=blake2b256(body if signed_body is None else signed_body),
        now=int(time.time()) if now is None else now,
    )


def signed_put(
    hub: HubProcess,
    path: str,
    body: bytes,
    *,
    identity: Identity,
    twin_id: int,
    signed_body: bytes | None = None,
    now: int | None = None,
) -> httpx.Response:
    """A PUT signed by hand; a flist's publisher signature is made for the declared body."""
    headers = signed_headers(
        hub,
        "PUT",
        path,
        body,
        identity=identity,
        twin_id=twin_id,
        signed_body=signed_body,
        now=now,
    )
    if path.startswith("/flists/"):
        _, _, owner, name = path.split("/")
        declared = body if signed_body is None else signed_body
        headers["X-Flist-Signature"] = sign_flist(
            identity, int(owner), name, blake2b256(declared).hex()
        )
    return httpx.put(f"{hub.url}{path}", content=body, headers=headers)


def published(hub: HubProcess, flist: Path) -> bytes:
    """The bytes a client pushes for ``flist``: its blocks routed to the hub."""
    copy = flist.with_name(f"{flist.stem}-published.fl")
    copy.write_bytes(flist.read_bytes())
    point_at_hub(copy, f"{hub.url}/blocks")
    return copy.read_bytes()


def error_of(response: httpx.Response, code: str | None = None) -> str:
    """The message of the one error body shape, ``{"error": {"code", "message"}}``."""
    document = response.json()
    assert set(document) == {"error"}, document
    assert set(document["error"]) == {"code", "message"}, document
    if code is not None:
        assert document["error"]["code"] == code, document
    message = document["error"]["message"]
    assert isinstance(message, str)
    return message


# -- push and pull ---------------------------------------------------------------------------


def test_push_as_one_twin_pull_as_another_and_unpack_over_http(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob = new_twin(), new_twin()
    source, flist, router = pack(tmp_path, "app")
    seen: list[tuple[int, int]] = []

    async def scenario() -> None:
        async with client_of(hub, alice) as pusher, client_of(hub, bob) as puller:
            pushed = await pusher.push(
                flist, "app.fl", router, on_progress=lambda *p: seen.append(p)
            )
            assert pushed.owner == alice.twin_id
            assert pushed.name == "app.fl"
            assert pushed.url == f"{hub.url}/flists/{alice.twin_id}/app.fl"
            assert pushed.uploaded == pushed.blocks > 0
            assert seen[-1] == (pushed.blocks, pushed.blocks)

            pulled = await puller.pull(alice.twin_id, "app.fl", tmp_path / "pulled.fl")
            data = pulled.path.read_bytes()
            assert hashlib.blake2b(data, digest_size=32).hexdigest() == pushed.hash == pulled.hash
            assert len(data) == pushed.size
            by_hash = await puller.pull_by_hash(pushed.hash, tmp_path / "by-hash.fl")
            assert by_hash.path.read_bytes() == data

            # Pushing again uploads nothing: every block is already there.
            again = await pusher.push(flist, "app.fl", router)
            assert (again.uploaded, again.hash) == (0, pushed.hash)

            # The copies into a local store are checked; a second pull copies nothing.
            local = dir_router(tmp_path / "bob-blocks")
            first = await puller.pull(alice.twin_id, "app.fl", tmp_path / "p2.fl", blocks_to=local)
            assert first.copied == first.blocks == pushed.blocks
            second = await puller.pull(alice.twin_id, "app.fl", tmp_path / "p3.fl", blocks_to=local)
            assert (second.copied, second.blocks) == (0, pushed.blocks)

    asyncio.run(scenario())

    # The published copy sends readers to the hub for its blocks; the rest is untouched.
    with FlistReader(tmp_path / "pulled.fl") as reader, FlistReader(flist) as original:
        routes = reader.routes()
        assert routes == [Route(0, 255, f"{hub.url}/blocks")]
        assert list(reader.inodes()) == list(original.inodes())
        assert reader.all_blocks() == original.all_blocks()

    async def unpack_from_hub() -> None:
        fetcher = BlockFetcher(Router.from_routes(routes))
        try:
            await unpack(tmp_path / "pulled.fl", tmp_path / "out", fetcher)
            assert fetcher.fetched > 0
        finally:
            await fetcher.close()

    asyncio.run(unpack_from_hub())
    assert snapshot(tmp_path / "out") == snapshot(source)


def test_pull_with_blocks_goes_on_across_a_hub_restart(
    tmp_path: Path, hub_ledger: LedgerProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    _, flist, router = pack(tmp_path, "big", random_bytes=8 << 20)  # 16+ distinct blocks
    dest = tmp_path / "dest-blocks"
    kill_now, killed = threading.Event(), threading.Event()
    progress: list[tuple[int, int, float]] = []
    outcome: dict[str, object] = {}

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total, time.monotonic()))
        if done == 3:
            kill_now.set()
            # Hold this pull until the hub is dead: what is left must come from the
            # restarted one.
            killed.wait(timeout=30)

    with running_hub(tmp_path, hub_ledger.url) as hub:

        async def push() -> None:
            async with client_of(hub, alice) as client:
                await client.push(flist, "big.fl", router)

        asyncio.run(push())

        def pull() -> None:
            async def scenario() -> None:
                async with client_of(hub, parallel=2, retry_for=60) as client:
                    outcome["report"] = await client.pull(
                        alice.twin_id,
                        "big.fl",
                        tmp_path / "big-pulled.fl",
                        blocks_to=dir_router(dest),
                        on_progress=on_progress,
                    )

            try:
                asyncio.run(scenario())
            except BaseException as exc:
                outcome["error"] = exc

        puller = threading.Thread(target=pull)
        puller.start()
        assert kill_now.wait(timeout=60), "the pull made no progress"
        hub.kill9()
        killed.set()
        time.sleep(1)
        restarted = time.monotonic()
        hub.start()
        puller.join(timeout=120)
        assert not puller.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert hub.stop() == 0  # SIGTERM is a clean stop

    report = outcome["report"]
    with FlistReader(tmp_path / "big-pulled.fl") as reader:
        ids = [id_ for id_, _ in reader.all_blocks()]
    assert len(ids) >= 16
    assert report.blocks == report.copied == len(ids)  # type: ignore[attr-defined]
    assert [(done, total) for done, total, _ in progress] == [
        (done, len(ids)) for done in range(1, len(ids) + 1)
    ]
    # The hub was dead while the pull was held; what it still needed came after the restart.
    assert progress[-1][2] > restarted
    for id_ in ids:
        data = (dest / id_.hex()[:2] / id_.hex()).read_bytes()
        assert hashlib.blake2b(data, digest_size=32).digest() == id_


def test_a_hub_keeps_its_blocks_in_zero_db(
    tmp_path: Path, hub_ledger: LedgerProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    zdb = ZdbProcess(tmp_path / "zdb")
    zdb.start()
    try:
        admin = zdb.client()
        admin.execute_command("NSNEW", "hub")
        admin.execute_command("NSSET", "hub", "password", "s3cret")
        admin.close()
        blocks = f"zdb://hub:s3cret@127.0.0.1:{zdb.port}/hub"
        source, flist, router = pack(tmp_path, "zdb", random_bytes=700_000)
        with running_hub(tmp_path, hub_ledger.url, blocks=blocks) as hub:

            async def scenario() -> None:
                async with client_of(hub, alice) as client:
                    pushed = await client.push(flist, "zdb.fl", router)
                    assert pushed.uploaded == pushed.blocks
                    pulled = await client.pull(
                        alice.twin_id,
                        "zdb.fl",
                        tmp_path / "zdb-pulled.fl",
                        blocks_to=dir_router(tmp_path / "zdb-copy"),
                    )
                    assert pulled.copied == pulled.blocks == pushed.blocks
                    fetcher = BlockFetcher(dir_router(tmp_path / "zdb-copy"))
                    await unpack(pulled.path, tmp_path / "zdb-out", fetcher)
                    await fetcher.close()

            asyncio.run(scenario())
        assert snapshot(tmp_path / "zdb-out") == snapshot(source)
    finally:
        zdb.stop()


# -- refusals --------------------------------------------------------------------------------


def test_wrong_signatures_are_refused_with_401(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob = new_twin(), new_twin()
    _, flist, router = pack(tmp_path, "sig")
    body = published(hub, flist)
    path = f"/flists/{alice.twin_id}/sig.fl"

    # Claims to be alice, signed with bob's key.
    async def impostor() -> None:
        async with HubClient(hub.url, identity=bob.identity, twin_id=alice.twin_id) as client:
            await client.push(flist, "sig.fl", router)

    with pytest.raises(HubRefused) as caught:
        asyncio.run(impostor())
    assert caught.value.status == 401
    assert "bad signature" in caught.value.message

    # Signed by alice, but the body changed after signing: it does not match its hash.
    response = signed_put(
        hub, path, body, identity=alice.identity, twin_id=alice.twin_id, signed_body=body[:-1]
    )
    assert response.status_code == 400
    assert "does not match its declared BLAKE2b-256" in error_of(response, "body_mismatch")

    # Signed too long ago.
    old = int(time.time()) - 3600
    response = signed_put(hub, path, body, identity=alice.identity, twin_id=alice.twin_id, now=old)
    assert response.status_code == 401
    assert "clock" in error_of(response, "unauthorized")
    assert response.headers["www-authenticate"] == "Zgrid"

    # A twin the ledger does not know.
    response = signed_put(hub, path, body, identity=alice.identity, twin_id=999_999)
    assert response.status_code == 401
    assert "twin 999999 is not on the ledger" in error_of(response)

    # Not signed at all, or not in the scheme.
    for headers in ({}, {"Authorization": "Bearer abc"}):
        response = httpx.put(f"{hub.url}{path}", content=body, headers=headers)
        assert response.status_code == 401
        assert "Authorization" in error_of(response)

    assert httpx.get(f"{hub.url}/flists/{alice.twin_id}").json() == []


def test_writes_to_another_twins_names_are_refused_with_403(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob = new_twin(), new_twin()
    _, flist, router = pack(tmp_path, "mine")

    async def scenario() -> None:
        async with client_of(hub, alice) as client:
            await client.push(flist, "mine.fl", router)

    asyncio.run(scenario())
    response = signed_put(
        hub,
        f"/flists/{alice.twin_id}/mine.fl",
        published(hub, flist),
        identity=bob.identity,
        twin_id=bob.twin_id,
    )
    assert response.status_code == 403
    assert error_of(response) == f"twin {bob.twin_id} cannot change flists of twin {alice.twin_id}"

    path = f"/flists/{alice.twin_id}/mine.fl"
    headers = signed_headers(hub, "DELETE", path, identity=bob.identity, twin_id=bob.twin_id)
    response = httpx.delete(f"{hub.url}{path}", headers=headers)
    assert response.status_code == 403
    assert [e["name"] for e in httpx.get(f"{hub.url}/flists/{alice.twin_id}").json()] == ["mine.fl"]


def test_flists_with_missing_blocks_or_bad_metadata_are_refused(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    _, flist, _ = pack(tmp_path, "lonely", random_bytes=600_000)  # blocks never uploaded
    with FlistReader(flist) as reader:
        total = len(reader.all_blocks())

    def put(name: str, body: bytes) -> httpx.Response:
        return signed_put(
            hub,
            f"/flists/{alice.twin_id}/{name}",
            body,
            identity=alice.identity,
            twin_id=alice.twin_id,
        )

    response = put("lonely.fl", published(hub, flist))
    assert response.status_code == 409
    message = error_of(response)
    assert f"of the {total} blocks of this flist are not on the hub" in message

    response = put("junk.fl", b"this is not an flist")
    assert response.status_code == 400
    assert "not an SQLite file" in error_of(response)

    hostile = tmp_path / "hostile.fl"
    writer = FlistWriter(hostile)
    root = writer.add_inode(parent=0, name="/", size=0, uid=0, gid=0, mode=stat.S_IFDIR | 0o755)
    writer.add_inode(parent=root, name="../escape", size=0, uid=0, gid=0, mode=stat.S_IFDIR | 0o755)
    writer.close()
    response = put("hostile.fl", published(hub, hostile))
    assert response.status_code == 400
    assert "is not a file name" in error_of(response)

    response = put("bad name", published(hub, flist))
    assert response.status_code == 400
    assert "bad flist name" in error_of(response)

    assert httpx.get(f"{hub.url}/flists/{alice.twin_id}").json() == []


def test_blocks_are_refused_unless_they_hash_to_their_id(
    hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice = new_twin()
    block = encode_block(secrets.token_bytes(1000))
    other = encode_block(secrets.token_bytes(1000))

    async def scenario() -> None:
        async with client_of(hub, alice) as client:
            with pytest.raises(HubRefused) as caught:
                await client.put_block(block.id, other.data)
            assert caught.value.status == 400
            assert "its BLAKE2b-256 differs" in caught.value.message
            assert await client.get_block(block.id) is None
            assert await client.missing([block.id, other.id]) == [block.id, other.id]
            await client.put_block(block.id, block.data)
            assert await client.get_block(block.id) == block.data
            assert await client.missing([block.id, other.id]) == [other.id]

    asyncio.run(scenario())

    # A body over 1 MiB is refused without being held.
    big = secrets.token_bytes((1 << 20) + 1)
    id_hex = blake2b256(big).hex()
    response = signed_put(
        hub, f"/blocks/{id_hex}", big, identity=alice.identity, twin_id=alice.twin_id
    )
    assert response.status_code == 413

    # Reading needs no signature, in both layouts of the http store.
    name = block.id.hex()
    for url in (f"{hub.url}/blocks/{name[:2]}/{name}", f"{hub.url}/blocks/{name}"):
        assert httpx.get(url).content == block.data
        head = httpx.head(url)
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(block.data)))
    assert httpx.get(f"{hub.url}/blocks/{other.id.hex()}").status_code == 404
    assert httpx.get(f"{hub.url}/blocks/zz/{name}").status_code == 404
    assert httpx.get(f"{hub.url}/blocks/not-hex").status_code == 400

    missing = httpx.post(f"{hub.url}/blocks/missing", content=b"[1, 2]")
    assert (missing.status_code, "list of hex block ids" in error_of(missing)) == (400, True)
    too_many = json.dumps([name] * 10_001).encode()
    response = httpx.post(f"{hub.url}/blocks/missing", content=too_many)
    assert response.status_code == 400
    assert "at most 10000" in error_of(response)
    assert httpx.get(f"{hub.url}/nowhere").json() == {
        "error": {"code": "not_found", "message": "Not Found"}
    }


# -- listing ---------------------------------------------------------------------------------


def test_listing_get_by_hash_and_delete(
    tmp_path: Path, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    alice, bob = new_twin(), new_twin()
    _, first, first_router = pack(tmp_path, "one")
    _, second, second_router = pack(tmp_path, "two", random_bytes=1000)

    async def scenario() -> None:
        async with client_of(hub, alice) as mine, client_of(hub, bob) as theirs:
            one = await mine.push(first, "one.fl", first_router)
            two = await mine.push(second, "two.fl", second_router)
            await theirs.push(first, "copy.fl", first_router)

            listed = await theirs.list(alice.twin_id)
            assert [(e.name, e.hash, e.size) for e in listed] == [
                ("one.fl", one.hash, one.size),
                ("two.fl", two.hash, two.size),
            ]
            assert all(abs(e.updated - time.time()) < 60 for e in listed)
            owners = {entry.owner: entry.count for entry in await theirs.list()}
            assert owners[alice.twin_id] == 2
            assert owners[bob.twin_id] == 1

            response = httpx.get(f"{hub.url}/flists/by-hash/{two.hash}")
            assert response.headers["x-flist-hash"] == two.hash
            assert hashlib.blake2b(response.content, digest_size=32).hexdigest() == two.hash

            await mine.delete("two.fl")
            assert [e.name for e in await theirs.list(alice.twin_id)] == ["one.fl"]
            with pytest.raises(HubRefused) as caught:
                await theirs.pull(alice.twin_id, "two.fl", tmp_path / "gone.fl")
            assert caught.value.status == 404
            assert f"twin {alice.twin_id} has no flist 'two.fl'" in caught.value.message
            with pytest.raises(HubRefused):
                await theirs.pull_by_hash(two.hash, tmp_path / "gone.fl")
            with pytest.raises(HubRefused) as caught:
                await mine.delete("two.fl")
            assert caught.value.status == 404
            assert not (tmp_path / "gone.fl").exists()

    asyncio.run(scenario())


def test_client_errors_are_hub_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with HubClient(f"http://127.0.0.1:{free_port()}", retry_for=0.5) as client:
            with pytest.raises(HubError, match="cannot reach the hub"):
                await client.list()
            with pytest.raises(HubError, match="needs an identity"):
                await client.delete("x.fl")

    asyncio.run(scenario())


# -- the command -----------------------------------------------------------------------------


def test_run_command_describes_its_options() -> None:
    runner = CliRunner()
    result = runner.invoke(hub_cli, ["run", "--help"])
    assert result.exit_code == 0
    for option in ("--data", "--listen", "--blocks", "--ledger", "--public-url"):
        assert option in result.output
    result = runner.invoke(hub_cli, ["run", "--data", "x", "--listen", "nonsense"])
    assert result.exit_code == 2
    assert "--listen must be HOST:PORT" in result.output


def test_public_face_is_pinned() -> None:
    assert hub_package.__all__ == [
        "BODY_HASH_HEADER", "DEFAULT_HUB_PORT", "FLIST_SIGNATURE_HEADER", "MAX_BLOCK_BYTES",
        "MAX_CLOCK_SKEW", "MAX_FLIST_BYTES", "MAX_MISSING_IDS", "Authenticator", "FlistEntry",
        "FlistRecord", "FlistStorage", "Hub", "HubClient", "HubOptions", "HubRefused",
        "NonceStore", "OwnerEntry", "PullReport", "PushReport", "TransferProgress",
        "UploadLimits", "authorization", "create_app", "open_hub", "run_hub", "serve",
        "sign_flist", "signed_digest", "verify_flist",
    ]  # fmt: skip
    for name in hub_package.__all__:
        assert getattr(hub_package, name) is not None, name
