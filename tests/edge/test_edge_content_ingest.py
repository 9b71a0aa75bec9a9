"""An origin pull as the store sees it: chunks cut, signed and written in a worker thread,
renamed into the store with their rows on the db thread (cdn_edge/content/chunk_writer.py);
a replica's chunks are written the same way.

What must hold whatever the worker is doing when a body ends: a sealed pull (or a
replica) leaves one file per distinct chunk and no temporary file; a body cut short
leaves nothing at all (no chunk file, no row, no temporary file of a chunk still being
written).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import aiohttp

from tests.edge.edge_client import download, fetch, get_chunk, request
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024


def _store(data_dir: Path) -> tuple[list[Path], list[Path], int]:
    """The chunk files, the temporary files and the chunk rows in an edge's data dir."""
    files = [p for p in (data_dir / "chunks").rglob("*") if p.is_file()]
    tmp = list((data_dir / "tmp").iterdir())
    db = sqlite3.connect(f"file:{data_dir / 'content.sqlite3'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    finally:
        db.close()
    return files, tmp, int(rows)


async def _failed(session: aiohttp.ClientSession, edge: str, cid: str) -> None:
    for _ in range(400):
        status, body, _ = await request(session, "GET", f"{edge}/v1/content/{cid}")
        assert status == 200, body[:300]
        if json.loads(body)["error"] is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the content did not fail")


async def test_a_pull_stores_each_distinct_chunk_once_and_leaves_no_temporary_file(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "4096")
    try:
        async with aiohttp.ClientSession() as session:
            size = 24 * CHUNK + 1000  # not a multiple of the chunk size: a short last chunk
            _, body = await download(session, edge.url, f"{origin.url}/bytes/{size}")
    finally:
        edge.stop()
    assert body == pattern(0, size)
    files, tmp, rows = _store(tmp_path / "edge")
    expected = {hashlib.sha256(body[i : i + CHUNK]).hexdigest() for i in range(0, size, CHUNK)}
    assert {p.name for p in files} == expected
    assert tmp == [] and rows == 25


async def test_a_replica_stores_what_it_serves_the_same_way(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    first = start_edge(tmp_path / "first", ledger.url, "--free-mib", "4096")
    replica = start_edge(tmp_path / "replica", ledger.url, "--free-mib", "4096",
                         f"--tracker={first.url}")  # fmt: skip
    size = 6 * CHUNK
    try:
        async with aiohttp.ClientSession() as session:
            fetched, body = await download(session, first.url, f"{origin.url}/bytes/{size}")
            cid = fetched.info["content_id"]
            served = [await get_chunk(session, replica.url, cid, i) for i in range(6)]
    finally:
        replica.stop()
        first.stop()
    assert [status for status, _, _ in served] == [200] * 6
    assert b"".join(chunk for _, chunk, _ in served) == body
    files, tmp, rows = _store(tmp_path / "replica")
    assert len(files) == rows == 6 and tmp == []


async def test_a_body_cut_short_leaves_no_chunk_file_row_or_temporary_file(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    # The origin promises 64 chunks and closes after 32; the chunks cut just before the end
    # are still being signed and written by the worker when the body fails.
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "4096")
    try:
        async with aiohttp.ClientSession() as session:
            for n in range(3):
                url = f"{origin.url}/short/{64 * CHUNK + n}?pause=0"
                await _failed(session, edge.url, (await fetch(session, edge.url, url)).info[
                    "content_id"])  # fmt: skip
            await asyncio.sleep(0.5)  # a worker's write ending after the failure is removed
            files, tmp, rows = _store(tmp_path / "edge")
    finally:
        edge.stop()
    assert (files, tmp, rows) == ([], [], 0)
