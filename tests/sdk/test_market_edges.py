"""The SDK against a real market edge (docs/market.md): 4 MiB/s, 4 slots (1 free), a
reserve of 0.001 BTT/MiB, 1 s rounds, no free allowance.

Requesters come from loopback addresses of their own (127.0.0.2, 127.0.0.3...), as an
edge shares its free lane by address. A bidder pays the clearing price for exactly the
bytes of its paid slot; a requester that cannot pay (no wallet, an empty one, a ceiling
under the reserve) completes through the free lane, never answered 402, and opens no
channel. Short runs: the rates by bid are the scenario tests' and the benchmark's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.client import AtlasClient
from requester.download_progress import Progress
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import PASSPHRASE, Home, fund_edges, make_home, summary

T = TypeVar("T")
MIB = 1 << 20
RESERVE = BTT_LOCAL.one // 1000
"""0.001 BTT per MiB, in base units."""
MARKET = ["--upload-capacity", "4MiB/s", "--slots", "4", "--free-slots", "1",
          "--reserve", "0.001", "--round-seconds", "1", "--free-mib", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def market_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    running = start_edge(tmp_path_factory.mktemp("market-edge"), ledger.url, *MARKET)
    asyncio.run(fund_edges(ledger.url, [running.url]))
    yield running
    running.stop()


async def download(home: Home | None, url: str, edge: str, source: str,
                   ceiling: int | None = None) -> tuple[bytes, Progress, int]:  # fmt: skip
    """``url`` through ``edge`` from address ``source``, paying from ``home``'s wallet (None:
    no wallet); the body, the progress and how many channels the wallet holds after."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        manager, store = None, None
        if home is not None:
            keys = keystore.load(home.path / "wallet.json", PASSPHRASE)
            store = PayerStore(home.path / "state.sqlite3")
            manager = ChannelManager(keys.payer, store, LedgerClient(home.ledger, session))
        try:
            payer = None if manager is None else Budget(manager, None)
            client = AtlasClient([edge], session, payer, max_price_per_mib=ceiling)
            got = await client.open(url)
            body = b"".join([chunk async for chunk in got.chunks()])
            return body, got.progress, 0 if manager is None else len(manager.channels())
        finally:
            if store is not None:
                store.close()


async def both(first: Awaitable[T], second: Awaitable[T]) -> tuple[T, T]:
    one, two = await asyncio.gather(first, second)
    return one, two


def test_a_bidder_pays_the_clearing_price_for_its_paid_slot_and_a_free_one_completes(
    market_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "bidder", [market_edge.url], ledger.url)
    size = 8 * MIB
    url = f"{origin.url}/bytes/{size}?t=market-both"
    (paid_body, paid, channels), (free_body, free, _) = asyncio.run(both(
        download(home, url, market_edge.url, "127.0.0.2", ceiling=10 * RESERVE),
        download(None, url, market_edge.url, "127.0.0.3"),
    ))  # fmt: skip
    assert paid_body == free_body == pattern(0, size)
    [bidder] = paid.providers.values()
    assert bidder.paid_bytes > 0 and channels == 1, bidder
    # one bidder for three paid slots: the clearing price is the reserve, paid per chunk
    # rounded up to a base unit
    price = bidder.price_per_mib_paid
    assert price is not None and RESERVE <= price <= RESERVE + 1
    assert bidder.charged <= bidder.paid  # what it signed covers what it was charged
    [freeloader] = free.providers.values()
    assert freeloader.lane == "free" and freeloader.free_bytes == freeloader.bytes > 0
    assert freeloader.paid == 0 and freeloader.dropped is None


def test_a_ceiling_under_the_price_gets_the_free_lane_and_opens_nothing(
    market_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "thrifty", [market_edge.url], ledger.url)
    size = 3 * MIB
    body, progress, channels = asyncio.run(download(
        home, f"{origin.url}/bytes/{size}?t=market-low", market_edge.url, "127.0.0.4",
        ceiling=RESERVE // 10,
    ))  # fmt: skip
    assert body == pattern(0, size)
    [stats] = progress.providers.values()
    assert stats.lane == "free" and stats.paid == 0 and channels == 0


def test_an_empty_wallet_downloads_from_a_market_edge(
    market_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    poor = make_home(tmp_path / "poor", [market_edge.url], ledger.url, funds=0)
    size = 2 * MIB + 3
    doc = summary(poor.atlas("fetch", f"{origin.url}/bytes/{size}?t=market-poor", "-o",
                             str(tmp_path / "p.bin"), "--json", "--max-price", "1"))  # fmt: skip
    assert (tmp_path / "p.bin").read_bytes() == pattern(0, size)
    [provider] = doc["providers"].values()
    assert provider["lane"] == "free" and provider["paid"] == "0" and doc["paid"] == "0"
    assert provider["market"]["capacity"] == 4 * MIB


@pytest.fixture(scope="module")
def dear_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running,
              market_edge: Running) -> Iterator[Running]:  # fmt: skip
    """Like ``market_edge`` (its tracker), at a reserve of 0.01 BTT/MiB."""
    dear = [*MARKET[:7], "0.01", *MARKET[8:], f"--tracker={market_edge.url}"]
    running = start_edge(tmp_path_factory.mktemp("dear-edge"), ledger.url, *dear)
    asyncio.run(fund_edges(ledger.url, [running.url]))
    yield running
    running.stop()


def test_a_replica_asking_more_than_the_ceiling_is_used_through_its_free_lane_only(
    market_edge: Running, dear_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    # The cheap edge fetches the content; the dear one is a replica priced above the
    # ceiling: it is sent no bid and no payment, and serves what it lacks through its free
    # lane all the same, pulling it through the cheap edge's free lane (docs/market.md).
    # Before, a replica answered an unpaid request 402 and the dear edge was dropped.
    home = make_home(tmp_path / "between", [market_edge.url, dear_edge.url], ledger.url)
    out = str(tmp_path / "two.bin")
    doc = summary(home.atlas("fetch", f"{origin.url}/bytes/{4 * MIB}?t=market-two", "-o", out,
                             "--json", "--max-price", "0.005"))  # fmt: skip
    cheap, dear = doc["providers"][market_edge.url], doc["providers"][dear_edge.url]
    assert cheap["bytes"] + dear["bytes"] == 4 * MIB and doc["dropped"] == {}
    assert cheap["market"]["clearing_price"] == str(RESERVE)
    assert dear["paid"] == "0" and dear["paid_bytes"] == 0 and dear["market"]["bid"] is None
    assert dear["market"]["clearing_price"] == str(10 * RESERVE)
