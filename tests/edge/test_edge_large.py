"""A response far larger than any buffer, streamed through an edge in bounded memory.

200 MiB come from the origin's generated stream, through a real edge, to a
client that hashes each chunk as it arrives and keeps none of them; the edge's
peak resident memory (``VmHWM``) may grow by far less than the response. Takes
about 10 s on two cores.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp

from requester.protocol import ContentVerifier, b64url_decode
from tests.edge.edge_client import fetch, get_chunk, wait_for_seal
from tests.origin_server import pattern
from tests.processes import Running, start_edge

MIB = 1 << 20
SIZE = 200 * MIB
CHUNK = 256 * 1024
MAX_GROWTH = 64 * MIB


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, MIB):
        digest.update(pattern(offset, min(MIB, size - offset)))
    return digest.hexdigest()


async def test_200_mib_stream_through_the_edge_in_bounded_memory(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "4096")
    try:
        before = peak_rss(edge.proc.pid)
        digest = hashlib.sha256()
        received = 0
        async with aiohttp.ClientSession() as session:
            fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{SIZE}")
            cid = fetched.info["content_id"]
            verifier = ContentVerifier(fetched.head)
            index = 0
            while True:
                status, body, headers = await get_chunk(session, edge.url, cid, index)
                if status == 416:
                    break
                assert status == 200, (index, body[:300])
                verifier.verify_chunk(b64url_decode(headers["Atlas-Chunk"], 200, "chunk"), body)
                digest.update(body)
                received += len(body)
                index += 1
            info = await wait_for_seal(session, edge.url, cid)
        verifier.accept_seal(b64url_decode(info["seal"], 200, "seal"))
        verifier.check_complete()
        growth = peak_rss(edge.proc.pid) - before
    finally:
        edge.stop()
    assert fetched.head.chunk_size == MIB  # a large body: 1 MiB chunks
    assert (received, index) == (SIZE, SIZE // MIB)
    assert digest.hexdigest() == expected_sha256(SIZE)
    assert growth < MAX_GROWTH, f"edge peak RSS grew by {growth / MIB:.1f} MiB for a 200 MiB body"


async def test_a_body_of_64_mib_or_more_is_cut_in_1_mib_chunks_except_on_a_market_edge(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    plain = start_edge(tmp_path / "plain", ledger.url)
    market = start_edge(tmp_path / "market", ledger.url, "--upload-capacity", "64MiB/s")
    try:
        async with aiohttp.ClientSession() as session:
            sizes = {}
            for edge, size in ((plain, 64 * MIB), (plain, 64 * MIB - 1), (market, 64 * MIB)):
                got = await fetch(session, edge.url, f"{origin.url}/bytes/{size}?t=cut")
                sizes[(edge.url, size)] = got.head.chunk_size
                assert got.head.size_hint == size
    finally:
        plain.stop()
        market.stop()
    assert sizes == {(plain.url, 64 * MIB): MIB, (plain.url, 64 * MIB - 1): CHUNK,
                     (market.url, 64 * MIB): CHUNK}  # fmt: skip
