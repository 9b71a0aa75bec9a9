"""A page asset's one chunk without the scheduler (requester/single_chunk.py), as the proxy
answers it in place: one paid request to the origin edge, and a lying origin edge dropped
with evidence while the other edges serve the asset. Real edges, ledger and origin."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.client import AtlasClient, Download
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.single_chunk import is_single
from tests.origin_server import pattern
from tests.processes import Running, start_program
from tests.sdk.conftest import PASSPHRASE, Home, make_home

SIZE = 20_000
LIAR = Path(__file__).parents[1] / "corrupting_provider.py"


@pytest.fixture
def home(tmp_path: Path, edges: list[Running], ledger: Running) -> Home:
    return make_home(tmp_path / "home", [e.url for e in edges], ledger.url)


@asynccontextmanager
async def paying_client(home: Path, ledger: str, edges: list[str]) -> AsyncIterator[AtlasClient]:
    keys = keystore.load(home / "wallet.json", PASSPHRASE)
    store = PayerStore(home / "state.sqlite3")
    try:
        async with aiohttp.ClientSession() as session:
            manager = ChannelManager(keys.payer, store, LedgerClient(ledger, session))
            yield AtlasClient(edges, session, Budget(manager, None))
    finally:
        store.close()


async def sealed(client: AtlasClient, url: str) -> Download:
    """``url`` opened once it is sealed at the edge: the first download reads it whole."""
    first = await client.open(url)
    assert b"".join([chunk async for chunk in first.chunks()]) == pattern(0, SIZE)
    download = await client.open(url)
    assert is_single(download.scheduler.verifier, download.scheduler.start_index)
    return download


async def test_a_one_chunk_content_is_one_paid_request_to_its_origin_edge(
    home: Home, edges: list[Running], ledger: Running, origin: Running
) -> None:
    url = f"{origin.url}/bytes/{SIZE}?max-age=3600&t=single-one"
    async with paying_client(home.path, ledger.url, home.edges) as client:
        download = await sealed(client, url)
        assert await client.single_chunk(download) == pattern(0, SIZE)
    summary = download.provider_summary()
    assert summary[edges[0].url]["chunks"] == 1
    assert summary[edges[0].url]["requests"] == 1
    assert summary[edges[0].url]["lane"] == "paid"
    assert all(summary[e.url]["requests"] == 0 for e in edges[1:]), summary
    assert download.progress.delivered_bytes == SIZE


async def test_a_lying_origin_edge_is_dropped_and_another_edge_serves_the_asset(
    home: Home, edges: list[Running], ledger: Running, origin: Running
) -> None:
    url = f"{origin.url}/bytes/{SIZE}?max-age=3600&t=single-liar"
    liar = start_program([sys.executable, str(LIAR), "--upstream", edges[0].url, "--every", "1"])
    try:
        async with paying_client(home.path, ledger.url, home.edges) as client:
            await sealed(client, url)  # sealed at edges[0], which the liar fronts
        lied_to = [liar.url, edges[1].url, edges[2].url]
        async with paying_client(home.path, ledger.url, lied_to) as client:
            download = await client.open(url)
            assert download.origin_edge == liar.url
            assert await client.single_chunk(download) == pattern(0, SIZE)
    finally:
        liar.stop()
    stats = download.progress.providers
    dropped = stats[liar.url].dropped
    assert dropped is not None and "bad chunk" in dropped
    assert stats[liar.url].evidence["provider"] == liar.url
    assert stats[liar.url].chunks == 0
    assert sum(stats[e].chunks for e in lied_to[1:]) == 1, stats
