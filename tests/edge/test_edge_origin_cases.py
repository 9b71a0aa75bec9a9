"""Awkward origins through a real edge: huge headers, redirects, chunk boundaries, trickles.

The origin fetcher's rules are tested in depth in-process (content/test_origin_fetch.py);
here the same cases go through the edge process, so what a requester sees (the
status, the problem's code and detail, the signed head and seal, the price of a
short last chunk) is checked end to end.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from requester.protocol import ManifestHead, Quote, UrlSource, b64url_decode
from tests.edge.edge_client import (
    LIMIT,
    download,
    fetch,
    get_chunk,
    problem,
    request,
    wait_for_seal,
)
from tests.edge.paying import open_channel, voucher_header
from tests.origin_server import pattern, text
from tests.processes import Running, start, start_edge

CHUNK = 256 * 1024
UNSPECIFIED = "origin address 0.0.0.0 is refused: unspecified ('this network')"


async def _post_fetch(session: aiohttp.ClientSession, edge: str, url: str
                      ) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    return await request(session, "POST", f"{edge}/v1/fetch", json={"url": url})


async def test_huge_origin_header_is_refused_clearly(origin: Running, free_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await _post_fetch(session, free_edge.url, f"{origin.url}/huge-headers")
    port = origin.url.rsplit(":", 1)[1]
    assert problem(answer, 502, "origin_too_large") == (
        f"origin 127.0.0.1:{port} sent a header line over 8190 bytes"
    )


async def test_status_no_manifest_can_hold_is_the_origins_fault(
    origin: Running, free_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await _post_fetch(session, free_edge.url, f"{origin.url}/status/999")
    assert problem(answer, 502, "origin_unreachable") == (
        "origin sent a response no manifest can hold: HTTP status 999 out of range"
    )


async def test_a_206_without_content_range_is_refused(origin: Running, free_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await _post_fetch(session, free_edge.url, f"{origin.url}/status/206")
    assert problem(answer, 502, "origin_unreachable") == (
        "origin sent a 206 without one valid Content-Range"
    )


async def test_redirect_chain_is_followed_and_the_head_names_the_asked_url(
    origin: Running, free_edge: Running
) -> None:
    url = f"{origin.url}/redirect/3"
    async with aiohttp.ClientSession() as session:
        fetched, body = await download(session, free_edge.url, url)
        async with session.get(f"{origin.url}/hits") as r:
            hits = await r.json()
    assert body == text(100)
    assert fetched.head.source == UrlSource(url)
    assert [hits.get(f"/redirect/{k}", 0) >= 1 for k in (3, 2, 1)] == [True] * 3


async def test_concatenated_gzip_members_arrive_whole_and_in_order(
    origin: Running, free_edge: Running
) -> None:
    # `cat a.gz b.gz`: a's output fills the decoder's read size many times over, which is
    # when the old decoder fed b's bytes twice (b twice, or b until the 4 GiB cap).
    size = 300_000
    async with aiohttp.ClientSession() as session:
        fetched, body = await download(session, free_edge.url, f"{origin.url}/gzip-members/{size}")
    assert body == text(size) + pattern(0, size)
    assert ("content-encoding", "gzip") not in fetched.head.headers


async def _failure(session: aiohttp.ClientSession, edge: str, cid: str) -> dict[str, Any]:
    """The content's description once its fetch has failed (within 10 s)."""
    async with asyncio.timeout(10):
        while True:
            status, body, _ = await request(session, "GET", f"{edge}/v1/content/{cid}")
            info: dict[str, Any] = json.loads(body)
            if info["error"] is not None:
                return info
            assert status == 200 and info["seal"] is None, info
            await asyncio.sleep(0.05)


async def test_a_body_cut_short_fails_every_chunk_of_its_content_and_its_replicas(
    origin: Running, free_edge: Running, ledger: Running, tmp_path: Path
) -> None:
    # The origin promises 8 chunks and closes after 4: the edge records origin_truncated and
    # answers it for every chunk (held or not) at once, marked terminal, instead of
    # `503 chunk_not_ready` until a requester gives up; an edge replicating it relays it.
    replica = start_edge(tmp_path / "replica", ledger.url, f"--tracker={free_edge.url}")
    try:
        async with aiohttp.ClientSession() as session:
            fetched = await fetch(session, free_edge.url, f"{origin.url}/short/{8 * CHUNK}")
            cid = fetched.info["content_id"]
            info = await _failure(session, free_edge.url, cid)
            answers = [await get_chunk(session, free_edge.url, cid, i) for i in (0, 7)]
            relayed = await get_chunk(session, replica.url, cid, 6)
    finally:
        replica.stop()
    port = origin.url.rsplit(":", 1)[1]
    why = f"origin 127.0.0.1:{port} closed the connection before the body's end"
    assert info["error"]["detail"].startswith(why) and info["chunks_available"] == 0
    for answer in [*answers, relayed]:
        assert answer[2]["Atlas-Content-State"] == "failed"
        assert "Atlas-Quote" not in answer[2], "nothing is sold for failed content"
    assert all(problem(a, 502, "origin_truncated").startswith(why) for a in answers)
    assert problem(relayed, 502, "origin_truncated").startswith(f"from {free_edge.url}: {why}")


async def test_too_many_redirects_are_refused(origin: Running, free_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await _post_fetch(session, free_edge.url, f"{origin.url}/redirect/6")
    detail = problem(answer, 502, "too_many_redirects")
    assert detail == f"more than 5 redirects, last to {origin.url}/text/100"


@pytest.mark.parametrize(
    ("location", "detail"),
    [
        ("http://127.0.0.1:0/", "origin port 0 is refused: not a valid TCP port"),
        ("http://0.0.0.0:{port}/", UNSPECIFIED),
        ("http://[ff02::1]:{port}/", "origin address ff02::1 is refused: multicast"),
    ],
)  # fmt: skip
async def test_redirect_off_limits_is_refused(
    odd_origin: Running, origin: Running, free_edge: Running, location: str, detail: str
) -> None:
    # With --allow-private-origins only what can never be an origin stays refused;
    # the full guard at every hop is tested in-process (content/test_origin_fetch.py).
    port = origin.url.rsplit(":", 1)[1]
    target = quote(location.format(port=port), safe="")
    async with aiohttp.ClientSession() as session:
        answer = await _post_fetch(session, free_edge.url, f"{odd_origin.url}/to?location={target}")
    assert problem(answer, 403, "blocked_address") == detail


async def test_guarded_edge_refuses_loopback_and_service_ports(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    # An edge with the SSRF guard on (no --allow-private-origins): the port is checked
    # before the address, so a Redis port is named as such even on loopback.
    args = ["edge", "serve", "--host", "127.0.0.1", "--port", "0"]
    edge = start([*args, "--data-dir", str(tmp_path / "edge"), "--ledger", ledger.url])
    try:
        async with aiohttp.ClientSession() as session:
            redis = await _post_fetch(session, edge.url, "http://127.0.0.1:6379/")
            loopback = await _post_fetch(session, edge.url, f"{origin.url}/redirect/1")
            ssh = await _post_fetch(session, edge.url, "http://example.org:22/")
    finally:
        edge.stop()
    assert problem(redis, 403, "blocked_address") == "origin port 6379 is refused: Redis port"
    assert problem(loopback, 403, "blocked_address") == (
        "origin address 127.0.0.1 is refused: loopback"
    )
    assert problem(ssh, 403, "blocked_address") == (
        "origin port 22 is refused: well-known port of a non-web service"
    )


def _quote(answer: tuple[int, bytes, dict[str, str]]) -> Quote:
    assert answer[0] == 402, answer[1][:300]
    return Quote.decode(b64url_decode(answer[2]["Atlas-Quote"], 400, "quote"))


async def test_empty_body_has_no_chunk_to_pay_for(origin: Running, paid_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/0")
        info = await wait_for_seal(session, paid_edge.url, fetched.info["content_id"])
        first = await get_chunk(session, paid_edge.url, fetched.info["content_id"], 0)
    seal = fetched.head.verify_seal(b64url_decode(info["seal"], 200, "seal"))
    assert (seal.total_size, seal.chunk_count) == (0, 0)
    assert problem(first, 416, "beyond_end") == "content has 0 chunks; 0 is past the end"
    assert "Atlas-Quote" not in first[2], "nothing to sell, so nothing to quote"


@pytest.mark.parametrize(
    ("size", "last"), [(CHUNK, CHUNK), (CHUNK + 1, 1)], ids=["one-chunk", "one-byte-over"]
)
async def test_chunk_boundary_and_price_of_a_short_last_chunk(
    origin: Running, ledger: Running, paid_edge: Running, size: int, last: int
) -> None:
    count = -(-size // CHUNK)
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{size}")
        cid = fetched.info["content_id"]
        info = await wait_for_seal(session, paid_edge.url, cid)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        bodies = []
        for index in range(count):
            quoted = await get_chunk(session, paid_edge.url, cid, index)
            price = int(quoted[2]["Atlas-Price"])
            wire = CHUNK if index < count - 1 else last
            assert price == _quote(quoted).chunk_price(wire)
            status, body, headers = await get_chunk(
                session,
                paid_edge.url,
                cid,
                index,
                {"Atlas-Voucher": voucher_header(channel, price)},
            )
            assert (status, headers["Atlas-Price"]) == (200, str(price))
            bodies.append(body)
        beyond = await get_chunk(session, paid_edge.url, cid, count)
    seal = fetched.head.verify_seal(b64url_decode(info["seal"], 200, "seal"))
    assert (seal.total_size, seal.chunk_count) == (size, count)
    assert b"".join(bodies) == pattern(0, size)
    assert len(bodies[-1]) == last
    detail = problem(beyond, 416, "beyond_end")
    assert detail == f"content has {count} chunks; {count} is past the end"


async def test_trickling_origin_is_fetched_once_for_everyone_who_asks(
    origin: Running, free_edge: Running
) -> None:
    # Three chunks and a 100-byte tail, 16 KiB every 20 ms: about 1 s from the origin.
    # Two requesters asking while it trickles share one fetch; one waiting for the
    # tail gets it as soon as it arrives, then learns where the content ends.
    size = 3 * CHUNK + 100
    url = f"{origin.url}/slow/{size}?delay=0.02"
    async with aiohttp.ClientSession() as session:
        first, second = await asyncio.gather(
            request(session, "POST", f"{free_edge.url}/v1/fetch", json={"url": url}),
            request(session, "POST", f"{free_edge.url}/v1/fetch", json={"url": url}),
        )
        infos = [json.loads(first[1]), json.loads(second[1])]
        cid = infos[0]["content_id"]
        tail = await get_chunk(session, free_edge.url, cid, 3)
        end = await get_chunk(session, free_edge.url, cid, 4)
        async with session.get(f"{origin.url}/hits") as r:
            hits = await r.json()
    assert sorted(i["cache"] for i in infos) == ["JOINED", "MISS"]
    assert infos[1]["content_id"] == cid
    assert ManifestHead.decode(b64url_decode(infos[0]["head"], LIMIT, "head")).source == UrlSource(
        url
    )
    assert tail[0] == 200 and tail[1] == pattern(3 * CHUNK, 100)
    assert problem(end, 416, "beyond_end") == "content has 4 chunks; 4 is past the end"
    assert hits[f"/slow/{size}"] == 1
