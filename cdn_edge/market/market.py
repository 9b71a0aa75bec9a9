"""An edge's market at run time: the round clock, the pacer that wakes waiting requests,
and what ``/v1/info`` and ``/metrics`` say about it.

With ``--upload-capacity 0`` (the default) the market is off: :meth:`Market.admit`
is never called, no task runs, and the clearing price is the fixed ``--price``.
Otherwise every chunk request waits in :class:`~cdn_edge.market.lanes.Lanes` for its
turn; the pacer grants turns no faster than the capacity, and every
``--round-seconds`` the bids clear (:class:`~cdn_edge.market.bids.BidBook`) and the
winners' paid lanes change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from cdn_edge.config import EdgeConfig
from cdn_edge.market.bids import BidBook
from cdn_edge.market.lanes import FREE, Lanes, Ticket
from cdn_edge.metrics import EdgeMetrics
from requester.listener_limits import address_key
from requester.protocol.auction import UNLIMITED


class Seeding(Protocol):
    """What uploads outside the lanes: the edge's torrent session."""

    def uploaded(self) -> int: ...


SLACK = 0.02
"""Seconds of sending the pacer may catch up on after a late wake-up (asyncio's sleeps
overshoot by a millisecond or so, which would otherwise be lost capacity)."""


class Market:
    """The bid book, the lanes and the clock of one edge."""

    def __init__(self, config: EdgeConfig, metrics: EdgeMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.capacity = config.upload_capacity
        self.book = BidBook(
            config.upload_capacity, config.slots, config.free_slots, config.price,
            config.round_seconds,
        )  # fmt: skip
        self.lanes = Lanes(max(1, config.upload_capacity), config.slots, slack=SLACK)
        self._fixed_price = config.price
        self._metrics = metrics
        self._clock = clock
        self._waiters: dict[Ticket, asyncio.Future[str]] = {}
        self._wake = asyncio.Event()
        metrics.facts.market_reserve = metrics.facts.market_clearing_price = config.price

    @property
    def enabled(self) -> bool:
        return self.capacity != UNLIMITED

    @property
    def clearing_price(self) -> int:
        """Base units per MiB a paid slot costs this round (the fixed price when off)."""
        return self.book.clearing.price if self.enabled else self._fixed_price

    def winner(self, payer: str | None) -> bool:
        return self.enabled and payer is not None and payer in self.lanes.winners

    async def admit(self, ticket: Ticket) -> str:
        """Wait for ``ticket``'s turn; the lane that granted it (``paid`` or ``free``)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[ticket] = future
        self.lanes.add(ticket)
        self._wake.set()
        try:
            return await future
        finally:
            if self._waiters.pop(ticket, None) is not None:  # gave up before its turn
                self.lanes.remove(ticket)

    async def send_free(self, client: str, size: int) -> None:
        """Wait for a free-lane turn of ``client``'s address to send ``size`` bytes that are
        not a chunk (a tunnel's), and count them."""
        await self.admit(Ticket(address_key(client), size))
        self.count(FREE, size)

    def count(self, lane: str, size: int) -> None:
        """``size`` bytes went out through ``lane``."""
        self._metrics.lane_bytes.labels(lane).inc(size)

    def meter_free(self, size: int) -> None:
        """Bytes sent outside the chunk lanes (torrent seeding): the link carried them."""
        if self.enabled and size > 0:
            now = self._clock()
            self.lanes.free_at = max(self.lanes.free_at, now - SLACK) + size / self.capacity
            self.count(FREE, size)

    async def run(self, seeding: Seeding | None = None) -> None:
        """The round clock and the pacer, until cancelled (nothing runs when off), and the
        meter of what ``seeding`` uploads."""
        if not self.enabled:
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._rounds())
            tasks.create_task(self._pace())
            if seeding is not None:
                tasks.create_task(self._meter_seeding(seeding))

    async def _rounds(self) -> None:
        while True:
            await asyncio.sleep(self.book.round_seconds)
            clearing = self.book.close_round()
            self.lanes.set_winners(frozenset(clearing.winners))
            self._metrics.facts.market_clearing_price = clearing.price
            self._metrics.market_winners.set(len(clearing.winners))

    async def _meter_seeding(self, seeding: Seeding) -> None:
        """Seeding goes out of libtorrent, not the lanes: count it as free traffic against
        the capacity, once a second (libtorrent's own limit paces it)."""
        last = 0
        while True:
            await asyncio.sleep(1.0)
            total = seeding.uploaded()
            self.meter_free(total - last)
            last = total

    async def _pace(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.lanes.waiting:
                now = self._clock()
                if now < self.lanes.free_at:
                    await asyncio.sleep(self.lanes.free_at - now)
                    continue
                ticket = self.lanes.grant(now)
                if ticket is None:
                    continue
                future = self._waiters.pop(ticket, None)
                if future is not None and not future.done():
                    future.set_result(ticket.lane or FREE)

    def info(self) -> dict[str, object]:
        """The ``market`` object of ``GET /v1/info``."""
        book = self.book
        return {
            "capacity": self.capacity, "slots": book.slots, "free_slots": book.free_slots,
            "reserve": str(book.reserve), "clearing_price": str(self.clearing_price),
            "round_seconds": book.round_seconds, "round": book.round,
            "winners": len(book.clearing.winners),
        }  # fmt: skip
