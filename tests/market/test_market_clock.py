"""The market at run time, on a real event loop: rounds clear the bids and change the paid
lanes, the pacer wakes waiting requests, and a request that goes away leaves no trace.

Capacities are large and rounds short so each test takes a fraction of a second; no
assertion is about how fast anything went.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cdn_edge.config import EdgeConfig
from cdn_edge.market import FREE, PAID, Market, Ticket
from cdn_edge.metrics import EdgeMetrics

MIB = 1 << 20
CHUNK = 256 * 1024


def config(capacity: int, rounds: float = 0.05) -> EdgeConfig:
    return EdgeConfig(
        Path("/nonexistent"), "http://127.0.0.1:9", upload_capacity=capacity, slots=4,
        free_slots=1, price=10, round_seconds=rounds,
    )  # fmt: skip


@asynccontextmanager
async def running(market: Market) -> AsyncIterator[Market]:
    task = asyncio.create_task(market.run())
    try:
        yield market
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_round(market: Market, after: int) -> None:
    async with asyncio.timeout(5):
        while market.book.round <= after:  # noqa: ASYNC110 (the round clock sets no event)
            await asyncio.sleep(0.01)


async def test_a_round_makes_the_best_covered_bid_a_winner_whose_paying_requests_use_its_slot(
) -> None:  # fmt: skip
    market = Market(config(1024 * MIB), EdgeMetrics())
    async with running(market):
        market.book.place("A", 30, 10**9)
        market.book.place("B", 20, 10**9)
        market.book.place("C", 10, 10**9)
        market.book.place("D", 5, 10**9)
        await wait_round(market, 0)
        assert market.winner("A") and market.winner("B") and market.winner("C")
        assert not market.winner("D") and market.clearing_price == 10  # max(reserve, 5)
        info = market.info()
        assert info["winners"] == 3 and info["clearing_price"] == "10" and info["reserve"] == "10"
        # Many paying requests from A among many free ones: some go through A's slot.
        lanes = await asyncio.gather(
            *(market.admit(Ticket("10.0.0.1", CHUNK, "A")) for _ in range(8)),
            *(market.admit(Ticket(f"10.0.0.{i}", CHUNK)) for i in range(2, 10)),
        )
        assert PAID in lanes[:8] and set(lanes[8:]) == {FREE}
        await wait_round(market, market.book.round)  # nobody bid again: no winner
        assert not market.winner("A") and market.clearing_price == 10


async def test_a_request_that_goes_away_while_waiting_leaves_no_trace() -> None:
    market = Market(config(MIB), EdgeMetrics())  # 1 MiB/s: a chunk holds the link 0.25 s
    async with running(market):
        assert await market.admit(Ticket("10.0.0.1", CHUNK)) == FREE  # the link is busy now
        waiting = asyncio.create_task(market.admit(Ticket("10.0.0.2", CHUNK)))
        await asyncio.sleep(0.01)
        assert market.lanes.active() == frozenset({"10.0.0.2"})
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert not market.lanes.waiting and not market._waiters


async def test_bytes_sent_outside_the_lanes_hold_the_link() -> None:
    market = Market(config(MIB, rounds=60), EdgeMetrics())
    market.meter_free(MIB)  # a second of seeding at 1 MiB/s
    assert market.lanes.free_at >= market._clock() + 0.9
    off = Market(config(0), EdgeMetrics())
    off.meter_free(MIB)  # no market: nothing is held
    assert off.lanes.free_at == 0.0 and not off.enabled and off.clearing_price == 10
