"""Fetching torrent files from a real seeder process, as the edge's /v1/fetch will.

Each file's bytes are compared with the seeder's deterministic content by SHA-256.
A bare infohash carries no peers, so those tests pass the seeder to
``open_torrent(..., peers=[...])``, the way an edge without DHT is pointed at one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.torrent import (
    TorrentFileNotFound,
    TorrentSession,
    TorrentTimeout,
    TorrentTooLarge,
    TorrentUnavailable,
    open_torrent,
    parse_source,
    parse_torrent_file,
)
from requester.protocol import MalformedMessage, TorrentSource
from tests.processes import Running
from tests.torrent.conftest import STREAMED_SIZE, expected_sha256, peer, torrent

GiB = 1 << 30


async def sha256_of(body: AsyncIterator[bytes]) -> str:
    digest = hashlib.sha256()
    async for block in body:
        digest.update(block)
    return digest.hexdigest()


async def fetch_all(session: TorrentSession, spec: Any, files: list[dict[str, Any]]) -> None:
    """Open the torrent, check its listing, stream every file and compare bytes."""
    async with await open_torrent(session, spec, metadata_timeout=10) as handle:
        listing = {(f["path"], f["size"]) for f in handle.files()}
        assert listing == {(f["path"], f["size"]) for f in files}
        for file in files:
            size, body = await handle.stream(file["path"], GiB)
            assert size == file["size"]
            assert await sha256_of(body) == expected_sha256(file), file["path"]


async def test_single_v1_by_magnet(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    spec = parse_source(record["magnet"])
    assert spec.peers == (peer(seeder),)
    await fetch_all(session, spec, record["files"])


async def test_multi_hybrid_by_magnet(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    await fetch_all(session, parse_source(record["magnet"]), record["files"])


async def test_multi_v2_by_magnet(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-v2")
    assert "urn:btih" not in record["magnet"]
    await fetch_all(session, parse_source(record["magnet"]), record["files"])


async def test_bare_v1_infohash_with_peer(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-v1")
    spec = parse_source(record["infohash_v1"])
    async with await open_torrent(session, spec, metadata_timeout=10, peers=[peer(seeder)]) as h:
        assert h.infohash == bytes.fromhex(record["infohash_v1"])
        assert h.infohash_v2 is None
        file = record["files"][1]  # data/a.bin: a v1 piece straddles it and its neighbours
        size, body = await h.stream(file["path"], GiB)
        assert (size, await sha256_of(body)) == (file["size"], expected_sha256(file))
        assert h.source(file["path"]) == TorrentSource(h.infohash, "data/a.bin")


async def test_bare_v2_infohash_of_hybrid(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    spec = parse_source(record["infohash_v2"])
    async with await open_torrent(session, spec, metadata_timeout=10, peers=[peer(seeder)]) as h:
        assert h.infohash == h.infohash_v2 == bytes.fromhex(record["infohash_v2"])
        assert h.infohash_v1 == bytes.fromhex(record["infohash_v1"])
        file = record["files"][2]
        size, body = await h.stream(file["path"], GiB)
        assert (size, await sha256_of(body)) == (file["size"], expected_sha256(file))


async def test_uploaded_torrent_file(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-v1")
    spec = parse_torrent_file(await asyncio.to_thread(Path(record["torrent_file"]).read_bytes))
    assert spec.v1 == bytes.fromhex(record["infohash_v1"])
    await fetch_all(session, spec.with_peers([peer(seeder)]), record["files"])


async def test_two_files_of_one_torrent_at_once(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        files = record["files"][:3]
        streams = [await handle.stream(f["path"], GiB) for f in files]
        digests = await asyncio.gather(*(sha256_of(body) for _, body in streams))
    assert digests == [expected_sha256(f) for f in files]


async def test_first_bytes_arrive_before_the_download_ends(
    session: TorrentSession, slow_seeder: Running
) -> None:
    record = torrent(slow_seeder, "single-hybrid")
    file = record["files"][0]
    started = time.monotonic()
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        size, body = await handle.stream(file["path"], GiB)
        first = await anext(body)
        first_at, progress = time.monotonic() - started, handle.progress()
        digest = hashlib.sha256(first)
        async for block in body:
            digest.update(block)
    total = time.monotonic() - started
    assert size == STREAMED_SIZE and digest.hexdigest() == expected_sha256(file)
    assert progress < 0.5, f"first bytes only at {progress:.0%} of the download"
    print(f"first bytes after {first_at:.2f} s at {progress:.0%}, all after {total:.2f} s")


async def test_handle_close_keeps_running_streams(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    handle = await open_torrent(session, parse_source(record["magnet"]))
    _, body = await handle.stream(record["files"][0]["path"], GiB)
    await handle.close()
    assert await sha256_of(body) == expected_sha256(record["files"][0])
    with pytest.raises(TorrentUnavailable, match="closed"):
        await handle.stream(record["files"][0]["path"], GiB)


async def test_files_are_deleted_after_the_last_use(
    tmp_path: Path, session: TorrentSession, seeder: Running
) -> None:
    record = torrent(seeder, "single-v1")
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        _, body = await handle.stream(record["files"][0]["path"], GiB)
        await sha256_of(body)
        assert any((tmp_path / "torrents").iterdir())
    for _ in range(50):
        if not any((tmp_path / "torrents").iterdir()):
            break
        await asyncio.sleep(0.1)
    assert not any((tmp_path / "torrents").iterdir())


async def test_seeding_keeps_the_torrent(tmp_path: Path, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    async with TorrentSession(tmp_path / "s", allow_private_peers=True, seed=True) as ses:
        async with await open_torrent(ses, parse_source(record["magnet"])) as handle:
            _, body = await handle.stream(record["files"][0]["path"], GiB)
            await sha256_of(body)
        again = await open_torrent(ses, parse_source(record["infohash_v1"]), metadata_timeout=1)
        async with again:  # still in the session: no peer needed, and no wait for metadata
            _, body = await again.stream(record["files"][0]["path"], GiB)
            assert await sha256_of(body) == expected_sha256(record["files"][0])


async def test_path_not_in_torrent(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "multi-hybrid")
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        with pytest.raises(TorrentFileNotFound, match=r"it has: .*data/a\.bin") as missing:
            await handle.stream("data/nope.bin", GiB)
        assert missing.value.status == 404
        assert ".pad" not in missing.value.message
        with pytest.raises(MalformedMessage, match="bad file path"):
            await handle.stream("../etc/passwd", GiB)
        with pytest.raises(TorrentFileNotFound):  # the torrent's own name is not part of paths
            await handle.stream(f"{record['name']}/readme.txt", GiB)


async def test_file_over_the_cap(session: TorrentSession, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    size = record["files"][0]["size"]
    async with await open_torrent(session, parse_source(record["magnet"])) as handle:
        with pytest.raises(TorrentTooLarge) as refused:
            await handle.stream(record["files"][0]["path"], size - 1)
    assert refused.value.status == 413
    assert refused.value.message == f"torrent file is {size} bytes, edge cap {size - 1}"


async def test_unknown_infohash_times_out(session: TorrentSession, seeder: Running) -> None:
    started = time.monotonic()
    with pytest.raises(
        TorrentTimeout, match=r"no metadata for torrent [0-9a-f]{40} within 2 s"
    ) as refused:
        await open_torrent(session, parse_source(os.urandom(20).hex()), metadata_timeout=2,
                           peers=[peer(seeder)])  # fmt: skip
    assert refused.value.status == 504
    assert 1.9 < time.monotonic() - started < 5


async def test_uploaded_torrent_without_peers_times_out(
    session: TorrentSession, seeder: Running
) -> None:
    record = torrent(seeder, "single-v1")
    spec = parse_torrent_file(await asyncio.to_thread(Path(record["torrent_file"]).read_bytes))
    async with await open_torrent(session, spec, metadata_timeout=2) as handle:
        with pytest.raises(
            TorrentTimeout, match=r"no data for torrent .* within 2 s \(0 peers connected\)"
        ):
            await handle.stream(record["files"][0]["path"], GiB)


async def test_storage_error_is_503(tmp_path: Path, seeder: Running) -> None:
    record = torrent(seeder, "single-v1")
    data_dir = tmp_path / "torrents"
    async with TorrentSession(data_dir, allow_private_peers=True) as ses:
        # The first torrent's directory is named after its infohash; a file there instead
        # makes every write fail.
        (data_dir / f"{record['infohash_v1'][:16]}-00000000").write_bytes(b"")
        async with await open_torrent(ses, parse_source(record["magnet"])) as handle:
            # The stream may open before the first write fails (it opens once a peer has
            # the first piece): the error comes with the first bytes at the latest.
            with pytest.raises(TorrentUnavailable, match="torrent storage error") as failed:
                _, body = await handle.stream(record["files"][0]["path"], GiB)
                await anext(body)
    assert failed.value.status == 503
