"""A small market edge with free requesters on it, for SDK tests that need both lanes.

The edge (4 MiB/s, 4 slots, 1 free, reserve 1 BTT/MiB, 1 s rounds, no free allowance)
is shared with three free requesters (loadtest/market/driver.py, loopback addresses of
their own), so a paying download is served by its paid slot or by its free turn,
whichever comes first: both lanes, vouchers and credit spends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtest.market.driver import Requester, content, drive
from tests.processes import Running, start_edge
from tests.sdk.conftest import fund_edges

CHUNK = 256 << 10
MARKET = ["--upload-capacity", "4MiB/s", "--slots", "4", "--free-slots", "1",
          "--reserve", "1", "--round-seconds", "1", "--free-mib", "0"]  # fmt: skip


@contextmanager
def market_edge(data_dir: Path, ledger: str) -> Iterator[Running]:
    running = start_edge(data_dir, ledger, *MARKET)
    try:
        asyncio.run(fund_edges(ledger, [running.url]))
        yield running
    finally:
        running.stop()


@contextmanager
def contended(edge: str, url: str, size: int, seconds: float) -> Iterator[None]:
    """Three free requesters on ``edge`` asking for ``url``'s chunks for ``seconds`` (in a
    thread of their own); the block's end waits for them."""

    async def run() -> None:
        cid = await content(edge, url)
        free = [Requester(f"127.0.9.{i}") for i in (1, 2, 3)]
        await drive(edge, "", cid, size // CHUNK, free, seconds=seconds, settle=0)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
