"""An edge fetching for requesters: bytes, caching, streaming, origin statuses."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.edge.edge_client import download, fetch, get_chunk
from tests.origin_server import pattern, text
from tests.processes import Running

CHUNK = 256 * 1024


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
async def test_bytes_arrive_exact_and_verified(
    origin: Running, free_edge: Running, size: int
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched, body = await download(session, free_edge.url, f"{origin.url}/bytes/{size}")
    assert body == pattern(0, size)
    assert fetched.head.status == 200
    assert fetched.head.header("content-type") == "application/octet-stream"


async def test_second_fetch_is_served_from_the_store(origin: Running, free_edge: Running) -> None:
    url = f"{origin.url}/cached/second-fetch"
    async with aiohttp.ClientSession() as session:
        first = await fetch(session, free_edge.url, url)
        await asyncio.sleep(0.2)
        second = await fetch(session, free_edge.url, url)
        async with session.get(f"{origin.url}/hits") as r:
            hits = await r.json()
    assert first.info["cache"] in ("MISS", "JOINED")
    assert second.info["cache"] == "HIT"
    assert second.info["content_id"] == first.info["content_id"]
    assert hits["/cached/second-fetch"] == 1


async def test_no_cache_content_is_revalidated(origin: Running, free_edge: Running) -> None:
    url = f"{origin.url}/revalidate/r1"
    async with aiohttp.ClientSession() as session:
        first = await fetch(session, free_edge.url, url)
        await asyncio.sleep(0.2)
        second = await fetch(session, free_edge.url, url)
    assert second.info["cache"] == "REVALIDATED"
    assert second.info["content_id"] == first.info["content_id"]


async def test_vary_keeps_variants_apart(origin: Running, free_edge: Running) -> None:
    url = f"{origin.url}/vary/v1"
    async with aiohttp.ClientSession() as session:
        en = await fetch(session, free_edge.url, url, {"Accept-Language": "en"})
        await asyncio.sleep(0.2)
        fr = await fetch(session, free_edge.url, url, {"Accept-Language": "fr"})
        await asyncio.sleep(0.2)
        en_again = await fetch(session, free_edge.url, url, {"Accept-Language": "en"})
        _, _, _ = await get_chunk(session, free_edge.url, fr.info["content_id"], 0)
        status, body, _ = await get_chunk(session, free_edge.url, fr.info["content_id"], 0)
    assert en.info["content_id"] != fr.info["content_id"]
    assert en_again.info["cache"] == "HIT"
    assert en_again.info["content_id"] == en.info["content_id"]
    assert status == 200 and body == b"language=fr"


async def test_private_responses_are_not_stored(origin: Running, free_edge: Running) -> None:
    url = f"{origin.url}/private/p1"
    async with aiohttp.ClientSession() as session:
        await fetch(session, free_edge.url, url)
        await asyncio.sleep(0.2)
        second = await fetch(session, free_edge.url, url)
    assert second.info["cache"] == "MISS"


@pytest.mark.parametrize("code", [404, 500])
async def test_origin_errors_pass_through(origin: Running, free_edge: Running, code: int) -> None:
    async with aiohttp.ClientSession() as session:
        fetched, body = await download(session, free_edge.url, f"{origin.url}/status/{code}")
    assert fetched.head.status == code
    assert body == f"origin said {code}\n".encode()


async def test_gzip_from_origin_is_decoded_before_chunking(
    origin: Running, free_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched, body = await download(session, free_edge.url, f"{origin.url}/gzip/300000")
    assert body == text(300000)
    assert fetched.head.header("content-encoding") is None


async def test_first_chunk_before_the_origin_finishes(origin: Running, free_edge: Running) -> None:
    # 2 MiB in 16 KiB pieces, 20 ms apart: the origin needs about 2.6 s.
    url = f"{origin.url}/slow/{2 * 1024 * 1024}?delay=0.02"
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, free_edge.url, url)
        assert fetched.info["seal"] is None
        status, body, _ = await get_chunk(session, free_edge.url, fetched.info["content_id"], 0)
        async with session.get(f"{free_edge.url}/v1/content/{fetched.info['content_id']}") as r:
            during = await r.json()
    assert status == 200 and body == pattern(0, CHUNK)
    assert during["seal"] is None, "the first chunk should arrive while the origin is still sending"


async def test_compressible_text_is_sent_zstd_and_costs_less(
    origin: Running, free_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, free_edge.url, f"{origin.url}/text/{CHUNK}")
        cid = fetched.info["content_id"]
        status_z, body_z, headers_z = await get_chunk(
            session, free_edge.url, cid, 0, {"Accept-Encoding": "zstd"}
        )
        status_raw, body_raw, headers_raw = await get_chunk(
            session, free_edge.url, cid, 0, {"Accept-Encoding": "identity"}
        )
    assert status_z == status_raw == 200
    assert headers_z.get("Content-Encoding") == "zstd"
    assert "Content-Encoding" not in headers_raw
    assert body_z == body_raw == text(CHUNK)
    assert int(headers_z["Atlas-Price"]) * 3 < int(headers_raw["Atlas-Price"])


async def test_bad_requests_get_json_problems(free_edge: Running) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path, body in [
            ("POST", "/v1/fetch", b"not json"),
            ("POST", "/v1/fetch", b'{"url": "ftp://x/"}'),
            ("POST", "/v1/fetch", b'{"url": 5}'),
            ("GET", "/v1/chunk/zz/0", None),
            ("GET", "/v1/chunk/" + "00" * 32 + "/x", None),
            ("GET", "/v1/chunk/" + "00" * 32 + "/0", None),
            ("GET", "/v1/content/" + "00" * 32, None),
        ]:
            async with session.request(method, free_edge.url + path, data=body) as r:
                assert 400 <= r.status < 500, (path, r.status)
                assert r.headers["Content-Type"].startswith("application/problem+json")
