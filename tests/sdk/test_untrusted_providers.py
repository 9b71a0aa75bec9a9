"""Providers found through trackers can lock up or take little (issue 13, defect 2).

Anyone can announce signed provider records for a content id. Here 20 fake
providers (tests/fake_providers.py: fresh node keys, fresh payees, valid
quotes, never a valid chunk) are announced for a cached 12 MiB file through the
real ``POST /v1/announce``, and ``atlas fetch`` downloads it. Before the fix
the requester opened a 10 BTT, 24 h channel to every one of them and kept
paying them. Now: at most two new channels (``unknown_channels``), each with a
0.1 BTT deposit (``unknown_deposit``), at most one chunk's price signed to
any fake, and the file still arrives whole from the real edges.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, NodeKey, ProviderRecord, b64url_encode
from requester.protocol.quote import chunk_price
from tests.origin_server import pattern
from tests.processes import Running, start_program
from tests.sdk.conftest import FUNDS, Home, summary
from tests.sdk.test_fetch_cli import channel_rows

CHUNK = 256 * 1024
FAKES = Path(__file__).parents[1] / "fake_providers.py"
EDGE_PRICE_PER_MIB = 10**15
"""An edge's default price (0.001 BTT per MiB); the fakes ask the same."""


async def cache(edge: str, url: str) -> str:
    """Have ``edge`` fetch ``url`` whole (sealed, cached); its content id."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{edge}/v1/fetch", json={"url": url}) as resp:
            info = await resp.json()
        for _ in range(300):
            if info.get("seal"):
                return str(info["content_id"])
            await asyncio.sleep(0.05)
            async with session.get(f"{edge}/v1/content/{info['content_id']}") as resp:
                info = await resp.json()
    raise AssertionError(f"{url} was never sealed: {info}")


async def announce(edges: list[str], content_id: str, urls: list[str]) -> None:
    """Sign a provider record for each fake with a fresh node key; announce to every edge."""
    expires = int(time.time()) + 600
    records = [b64url_encode(ProviderRecord.create(NodeKey.generate(), bytes.fromhex(content_id),
                                                   url, expires).encode())
               for url in urls]  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for edge in edges:
            async with session.post(f"{edge}/v1/announce", json={"records": records}) as resp:
                assert resp.status == 200 and (await resp.json())["accepted"] == len(urls)


async def facts(ledger: str, edges: list[str], home: Home) -> tuple[Any, set[str], int]:
    async with aiohttp.ClientSession() as session:
        client = LedgerClient(ledger, session)
        payees = set()
        for edge in edges:
            async with session.get(f"{edge}/v1/info") as resp:
                payees.add((await resp.json())["payee"])
        return await client.domain(), payees, await client.balance(home.address)


async def fake_stats(fakes: Running) -> dict[str, dict[str, int]]:
    async with aiohttp.ClientSession() as session, session.get(f"{fakes.url}/stats") as resp:
        stats: dict[str, dict[str, int]] = await resp.json()
        return stats


def test_twenty_fake_providers_get_two_small_channels_and_one_chunk_price_at_most(
    home: Home, origin: Running, ledger: Running, edges: list[Running], tmp_path: Path
) -> None:
    size = 48 * CHUNK
    url = f"{origin.url}/bytes/{size}?max-age=3600&t=fakes"
    # One known edge, which holds the file: an edge asked for content it lacks would
    # replicate it from the providers its tracker lists, fakes included, and pay them from
    # the edge's own wallet (its replicator has no probation: a separate matter).
    known = home.edges[:1]
    content_id = asyncio.run(cache(known[0], url))
    domain, edge_payees, _ = asyncio.run(facts(ledger.url, known, home))
    fakes = start_program([
        sys.executable, str(FAKES), "--count", "20", "--chain-id", str(domain.chain_id),
        "--contract", domain.contract.hex(), "--price-per-mib", str(EDGE_PRICE_PER_MIB),
    ])  # fmt: skip
    try:
        fake_urls = list(fakes.ready["urls"])  # type: ignore[call-overload]
        asyncio.run(announce(known, content_id, fake_urls))
        out = tmp_path / "file.bin"
        doc = summary(home.atlas("fetch", url, "--edge", known[0], "-o", str(out), "--json"))
        stats = asyncio.run(fake_stats(fakes))
    finally:
        fakes.stop()

    # The download is whole, from the real edges, and the fakes were in it.
    assert doc["content_id"] == content_id
    assert out.read_bytes() == pattern(0, size)
    contacted = [u for u, s in stats.items() if s["requests"]]
    assert len(contacted) >= 10, stats
    assert set(contacted) <= set(doc["dropped"]), (doc["dropped"], stats)

    # At most one chunk's price went to any fake, in at most two new channels, each small.
    one_chunk = chunk_price(0, EDGE_PRICE_PER_MIB, CHUNK)
    assert all(s["vouchers"] <= 1 for s in stats.values()), stats
    rows = channel_rows(home)
    to_fakes = [r for r in rows if r["payee"] not in edge_payees]
    assert len(to_fakes) <= 2, to_fakes
    assert all(int(r["spent_units"]) <= one_chunk for r in to_fakes), to_fakes
    locked_with_fakes = sum(int(r["deposit_units"]) for r in to_fakes)
    assert locked_with_fakes <= 2 * BTT_LOCAL.one // 10, to_fakes

    # The ledger agrees: what the wallet holds plus what it locked is what it was given,
    # and the fakes hold no more than that small part of it.
    _, _, balance = asyncio.run(facts(ledger.url, known, home))
    locked = sum(int(r["deposit_units"]) for r in rows)
    assert balance + locked == FUNDS


async def replicate_and_list(edge: str, tracker: str, content_id: str, chunks: int) -> None:
    """Make ``edge`` pull every chunk of ``content_id`` (an unpaid request replicates, then is
    answered 402) and wait until ``tracker`` lists it as a provider."""
    async with aiohttp.ClientSession() as session:
        for index in range(chunks):
            async with session.get(f"{edge}/v1/chunk/{content_id}/{index}") as resp:
                assert resp.status == 402, await resp.text()
        for _ in range(200):
            async with session.get(f"{tracker}/v1/providers/{content_id}") as resp:
                listed = [p["url"].rstrip("/") for p in (await resp.json())["providers"]]
            if edge in listed:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{tracker} never listed {edge}")


def test_an_honest_provider_found_by_a_tracker_is_proven_then_topped_up(
    home: Home, origin: Running, ledger: Running, edges: list[Running], tmp_path: Path
) -> None:
    """Probation costs an honest provider one round trip: after its first chunk verifies it
    gets all its workers, and its small first channel is topped up, not replaced."""
    config = home.path / "config.json"
    settings = json.loads(config.read_text())
    settings.update({"deposit": "1", "unknown_deposit": "0.0005"})  # 2 chunks' worth
    config.write_text(json.dumps(settings))
    size = 48 * CHUNK
    url = f"{origin.url}/bytes/{size}?max-age=3600&t=honest"
    known, found = edges[0].url, edges[1].url
    content_id = asyncio.run(cache(known, url))
    asyncio.run(replicate_and_list(found, known, content_id, 48))
    _, payees, _ = asyncio.run(facts(ledger.url, [found], home))

    out = tmp_path / "file.bin"
    doc = summary(home.atlas("fetch", url, "--edge", known, "-o", str(out), "--json"))
    assert out.read_bytes() == pattern(0, size)
    assert found not in doc["dropped"], doc["dropped"]
    assert doc["providers"][found]["chunks"] >= 3, doc["providers"]
    (channel,) = [r for r in channel_rows(home) if r["payee"] in payees]
    assert channel["deposit"] == "1.0005 BTT"  # 0.0005 on probation, then 1 more
    assert int(channel["spent_units"]) == int(doc["providers"][found]["paid"])
