"""Client helpers for an edge's HTTP API (``/v1/fetch``, ``/v1/content``, chunks, metrics)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import aiohttp

from loadtest.harness.children import BenchError

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to the edge, whatever proxy the environment names."""


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


def edge_counter(edge: str, metric: str) -> float:
    """One sample of the edge's Prometheus text, e.g. ``atlas_edge_vouchers_total{...}``
    (blocking: read between two measurements, never during one)."""
    with DIRECT.open(f"{edge}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
