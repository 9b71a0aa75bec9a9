"""Price discovery through the SDK (docs/market.md, For a requester): edge A (4 MiB/s,
reserve 1 BTT/MiB) and edge B (16 MiB/s, reserve 3 BTT/MiB), each 8 slots (2 free) with
1 s rounds, and three free requesters on each (loadtest/market/driver.py), so a free lane
is shared and a paid slot buys speed. B fetches the content; A is its replica (filled
before the download). The SDK downloads from a loopback address of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.market.driver import Requester, content, drive, session
from requester import keystore
from requester.channel_manager import ChannelManager, DepositPolicy
from requester.chunk_client import Budget
from requester.client import AtlasClient
from requester.download_progress import Progress
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL
from tests.origin_server import pattern
from tests.processes import Running, start, start_edge
from tests.sdk.conftest import PASSPHRASE, Home, fund_edges, make_home

MIB = 1 << 20
BTT = BTT_LOCAL.one
SIZE = 64 * MIB
CHUNKS = SIZE // (256 << 10)
ROUND = 1.0
SDK_SOURCE = "127.0.7.1"
DEPOSIT = DepositPolicy().deposit
"""The wallet's default ``deposit`` setting (10 BTT). A bid of 5 BTT/MiB for B's 2 MiB/s
slot is covered only while the channel holds 10 BTT unspent (one 1 s round): the SDK keeps
that room by topping up (tests/sdk/test_market_deposit.py), and the edge re-reads a
channel whose deposit no longer covers a bid (51f3f87; before it, this run paid B 4 MiB)."""


def market(capacity: str, reserve: str) -> list[str]:
    return ["--upload-capacity", capacity, "--slots", "8", "--free-slots", "2", "--reserve",
            reserve, "--round-seconds", f"{ROUND:g}"]  # fmt: skip


@dataclass
class Pair:
    a: Running
    b: Running
    a_dir: Path
    a_port: int
    ledger: str
    url: str  # the content, cached at B (max-age) and held whole by A
    home: Home

    def restart_a(self, reserve: str) -> None:
        """A again on the same port and data dir, at another reserve."""
        self.a.stop()
        self.a = start_a(self.a_dir, self.a_port, self.b, self.ledger, reserve)


def start_a(data_dir: Path, port: int, b: Running, ledger: str, reserve: str) -> Running:
    # Its free allowance pays what it replicates from B (pay-first, unpaced), not its market.
    args = ["edge", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
            str(data_dir), "--ledger", ledger, "--allow-private-origins", "--tracker", b.url,
            "--free-mib", "1024"]  # fmt: skip
    return start([*args, *market("4MiB/s", reserve)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pair(tmp_path: Path, ledger: Running, origin: Running) -> Iterator[Pair]:
    b = start_edge(tmp_path / "b", ledger.url, *market("16MiB/s", "3"), "--free-mib", "0")
    port = free_port()
    a = start_a(tmp_path / "a", port, b, ledger.url, "1")
    asyncio.run(fund_edges(ledger.url, [a.url, b.url]))
    url = f"{origin.url}/bytes/{SIZE}?max-age=3600"
    asyncio.run(fill(a.url, b.url, url))
    home = make_home(tmp_path / "home", [b.url, a.url], ledger.url, funds=1000 * BTT)
    running = Pair(a, b, tmp_path / "a", port, ledger.url, url, home)
    yield running
    running.a.stop()
    b.stop()


async def fill(a: str, b: str, url: str) -> None:
    """B fetches ``url``; A replicates every chunk of it (free to us: its allowance). One
    request at a time: with four at once some waited 30 s for a 503 chunk_not_ready and A
    ended up without a few chunks."""
    started = time.monotonic()
    cid = await content(b, url)
    print(f"B fetched in {time.monotonic() - started:.1f} s")
    async with session("127.0.8.1") as http:
        for index in range(CHUNKS):
            async with http.get(f"{a}/v1/chunk/{cid}/{index}") as answer:
                await answer.read()
                assert answer.status == 200, answer.status
        print(f"A filled at {time.monotonic() - started:.1f} s")
        for _ in range(100):  # its last chunks may still be on their way to its store
            async with http.get(f"{a}/v1/content/{cid}") as answer:
                held = (await answer.json())["chunks_available"]
            if held == CHUNKS:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"A holds {held} of {CHUNKS} chunks")


@contextlib.asynccontextmanager
async def contention(pair: Pair) -> AsyncIterator[None]:
    """Three free requesters on each edge for as long as the block runs."""
    cid = await content(pair.b.url, pair.url)
    loads = [(edge, [Requester(f"127.0.{net}.{i}") for i in (1, 2, 3)])
             for edge, net in ((pair.a.url, 5), (pair.b.url, 6))]  # fmt: skip
    tasks = [asyncio.create_task(drive(edge, "", cid, CHUNKS, load, seconds=3600, settle=0))
             for edge, load in loads]  # fmt: skip
    try:
        await asyncio.sleep(2 * ROUND)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def download(pair: Pair, ceiling: str, target: int | None = None,
                   watch: list[tuple[float, int, int]] | None = None) -> Progress:  # fmt: skip
    """The whole content through the SDK (B first, then A); ``watch`` gets (time, paid,
    free bytes) of A every 0.1 s."""
    keys = keystore.load(pair.home.path / "wallet.json", PASSPHRASE)
    store = PayerStore(pair.home.path / "state.sqlite3")
    try:
        async with session(SDK_SOURCE) as http:
            ledger = LedgerClient(pair.home.ledger, http)
            manager = ChannelManager(keys.payer, store, ledger, DepositPolicy(DEPOSIT))
            ceiling_units = int(ceiling) * BTT
            client = AtlasClient([pair.b.url, pair.a.url], http, Budget(manager, None),
                                 max_price_per_mib=ceiling_units, target_rate=target)  # fmt: skip
            got = await client.open(pair.url)

            async def sample() -> None:
                while watch is not None:
                    stats = got.progress.providers.get(pair.a.url)
                    if stats is not None:
                        watch.append((time.monotonic(), stats.paid, stats.free_bytes))
                    await asyncio.sleep(0.1)

            sampler = asyncio.create_task(sample())
            body = b"".join([chunk async for chunk in got.chunks()])
            sampler.cancel()
            assert body == pattern(0, SIZE)
            return got.progress
    finally:
        store.close()


@pytest.mark.slow
async def test_a_ceiling_of_2_pays_only_a_and_5_with_a_target_pays_both_mostly_b(
    pair: Pair,
) -> None:
    async with contention(pair):
        low = await download(pair, "2")
        high = await download(pair, "5", target=10 * MIB)
    a, b = low.providers[pair.a.url], low.providers[pair.b.url]
    print("ceiling 2:", a, b)
    assert a.paid_bytes > 0 and b.paid_bytes == 0 and b.free_bytes > 0
    a, b = high.providers[pair.a.url], high.providers[pair.b.url]
    print("ceiling 5:", a, b)
    assert a.paid_bytes > 0 and b.paid_bytes > 0
    assert b.paid_bytes >= (a.paid_bytes + b.paid_bytes) / 2


@pytest.mark.slow
async def test_raising_as_reserve_over_the_ceiling_stops_paying_a_but_keeps_its_free_lane(
    pair: Pair,
) -> None:
    watch: list[tuple[float, int, int]] = []
    async with contention(pair):
        running = asyncio.create_task(download(pair, "5", target=10 * MIB, watch=watch))
        await asyncio.sleep(3.0)
        await asyncio.to_thread(pair.restart_a, "6")
        back = time.monotonic()
        progress = await running
    a = progress.providers[pair.a.url]
    print("A:", a, "back at", back, [w for w in watch if w[0] > back - 1][:5])
    assert a.dropped is None, a.dropped
    assert max((w[1] for w in watch if w[0] < back), default=0) > 0  # paid A at 1 BTT/MiB
    rises = [now for (_, before, _), (now, paid, _) in itertools.pairwise(watch) if paid > before]
    last_paid = max((now for now in rises if now >= back), default=back)
    assert last_paid <= back + 2 * ROUND, (last_paid - back, watch)
    free_after = [w[2] for w in watch if w[0] > back + 2 * ROUND]
    assert free_after and free_after[-1] > free_after[0], "A's free lane was not kept"
