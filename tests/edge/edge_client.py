"""Minimal raw-HTTP helpers for edge tests (the SDK downloader comes later)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import zstandard
from yarl import URL

from requester.protocol import ContentVerifier, ManifestHead, b64url_decode

LIMIT = 1 << 20


@dataclass
class Fetched:
    info: dict[str, Any]
    head: ManifestHead


async def fetch(session: aiohttp.ClientSession, edge: str, url: str,
                headers: dict[str, str] | None = None) -> Fetched:  # fmt: skip
    async with session.post(f"{edge}/v1/fetch", json={"url": url, "headers": headers or {}}) as r:
        info = await r.json()
        assert r.status == 200, info
    return Fetched(info, ManifestHead.decode(b64url_decode(info["head"], LIMIT, "head")))


async def get_chunk(
    session: aiohttp.ClientSession, edge: str, content_id: str, index: int,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    """Status, identity-decoded body, headers of one chunk request."""
    async with session.get(
        f"{edge}/v1/chunk/{content_id}/{index}", headers=headers or {}, auto_decompress=False
    ) as r:
        body = await r.read()
        if r.headers.get("Content-Encoding") == "zstd":
            body = zstandard.ZstdDecompressor().decompress(body, max_output_size=LIMIT)
        return r.status, body, dict(r.headers)


async def download(
    session: aiohttp.ClientSession, edge: str, url: str, headers: dict[str, str] | None = None
) -> tuple[Fetched, bytes]:
    """Fetch ``url`` through ``edge`` and return every chunk, verified, in order."""
    fetched = await fetch(session, edge, url, headers)
    verifier = ContentVerifier(fetched.head)
    cid = fetched.info["content_id"]
    out = bytearray()
    index = 0
    while True:
        status, body, headers = await get_chunk(session, edge, cid, index)
        if status == 416:
            break
        assert status == 200, (status, body[:300])
        verifier.verify_chunk(b64url_decode(headers["Atlas-Chunk"], 200, "chunk"), body)
        out += body
        index += 1
    async with session.get(f"{edge}/v1/content/{cid}") as r:
        info = await r.json()
    verifier.accept_seal(b64url_decode(info["seal"], 200, "seal"))
    verifier.check_complete()
    return fetched, bytes(out)


Answer = tuple[int, bytes, dict[str, str]]
"""Status, body and headers of one raw request."""


async def request(session: aiohttp.ClientSession, method: str, url: str | URL,
                  **kwargs: Any) -> Answer:  # fmt: skip
    async with session.request(method, url, **kwargs) as r:
        return r.status, await r.read(), dict(r.headers)


def problem(answer: Answer, status: int, code: str) -> str:
    """Check ``answer`` is a JSON problem with this status and code; return its detail."""
    got, body, headers = answer
    assert got == status, (got, body[:300])
    assert headers["Content-Type"].startswith("application/problem+json"), headers
    doc = json.loads(body)
    assert doc["status"] == status, doc
    assert doc["type"] == f"https://atlas.invalid/problems/{code}", doc
    assert isinstance(doc["detail"], str) and doc["detail"], doc
    return doc["detail"]


async def wait_for_seal(session: aiohttp.ClientSession, edge: str,
                        content_id: str) -> dict[str, Any]:  # fmt: skip
    """The content's description once the edge has sealed it (within 30 s)."""
    async with asyncio.timeout(30):
        while True:
            async with session.get(f"{edge}/v1/content/{content_id}") as r:
                info: dict[str, Any] = await r.json()
                assert r.status == 200, info
            if info["seal"] is not None:
                return info
            await asyncio.sleep(0.05)


async def metrics(session: aiohttp.ClientSession, edge: str) -> dict[str, float]:
    """An edge's Prometheus samples, keyed ``name{labels}`` as written."""
    async with session.get(f"{edge}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples
