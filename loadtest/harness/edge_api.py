"""Client helpers for an edge's HTTP API (``/v1/fetch``, ``/v1/content``, chunks, metrics)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from loadtest.harness.children import BenchError


async def edge_fetch(session: aiohttp.ClientSession, edge: str, url: str) -> dict[str, Any]:
    async with session.post(f"{edge}/v1/fetch", json={"url": url}) as response:
        info: dict[str, Any] = await response.json()
        if response.status != 200:
            raise BenchError(f"fetch {url} via {edge}: {response.status} {info}")
    return info


async def wait_sealed(
    session: aiohttp.ClientSession, edge: str, cid: str, limit: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        async with session.get(f"{edge}/v1/content/{cid}") as response:
            info: dict[str, Any] = await response.json()
        if info.get("error"):
            raise BenchError(f"content {cid} failed at the edge: {info['error']}")
        if info.get("seal"):
            return info
        await asyncio.sleep(0.05)
    raise BenchError(f"content {cid} was not sealed within {limit} s")


async def get_chunk(
    session: aiohttp.ClientSession,
    edge: str,
    cid: str,
    index: int,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, Any]:
    async with session.get(
        f"{edge}/v1/chunk/{cid}/{index}", headers=headers or {}, auto_decompress=False
    ) as response:
        return response.status, await response.read(), response.headers


async def edge_counter(session: aiohttp.ClientSession, edge: str, metric: str) -> float:
    """One sample of the edge's Prometheus text, e.g. ``atlas_edge_vouchers_total{...}``."""
    async with session.get(f"{edge}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
