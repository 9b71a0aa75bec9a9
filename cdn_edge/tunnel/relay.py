"""One open tunnel: relay bytes both ways, never past what was paid.

Each direction is a pump that asks the :class:`TunnelMeter` how much it may
read before it reads (at most one socket read of 64 KiB), and how much it may
write before it writes. When the paid bytes run out both pumps stop reading,
so TCP backpressure holds the peers until more is paid; nothing piles up in
the edge. A watchdog closes the tunnel when nothing is paid in time or nothing
moves for too long.

Ends: the target closing its side ends the tunnel (after what it sent has
been forwarded); the client closing its side is passed on to the target as a
half-close, and the tunnel ends when the target closes in turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from cdn_edge.metrics import EdgeMetrics
from cdn_edge.tunnel.meter import TunnelMeter

READ_SIZE = 64 * 1024
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Ended(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Tunnel:
    """A paid byte pipe between a client and a target, with its meter and status."""

    def __init__(
        self,
        tunnel_id: str,
        target: str,
        client: str,
        meter: TunnelMeter,
        *,
        refill: Callable[[], bool],
        metrics: EdgeMetrics,
        pay_timeout: float,
        idle_timeout: float,
        pace: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """``refill`` tries to pay one more unit without the client (free allowance);
        ``pace`` waits for the edge's market to let that many bytes go (None: no market)."""
        self.id = tunnel_id
        self.target = target
        self.client = client
        self.meter = meter
        self.open = True
        self.reason: str | None = None
        """Why it closed."""
        self.closed_at: float | None = None
        self._refill = refill
        self._metrics = metrics
        self._pay_timeout = pay_timeout
        self._idle_timeout = idle_timeout
        self._pace = pace
        self._credited = asyncio.Event()
        self._client_done = False

    def credit(self, units: int) -> None:
        """More units were paid: wake the pumps waiting for them."""
        self.meter.credit(units)
        self._credited.set()

    def mark_closed(self, reason: str, now: float) -> None:
        if self.open:
            self.open, self.reason, self.closed_at = False, reason, now

    def status(self) -> dict[str, object]:
        return {
            "id": self.id,
            "target": self.target,
            "relayed": self.meter.relayed,
            "paid_bytes": self.meter.paid_bytes,
            "open": self.open,
            "paused": self.open and self.meter.available == 0,
            "reason": self.reason,
        }

    async def relay(self, client: Streams, target: Streams) -> str:
        """Relay until an end closes or a deadline passes; return why the tunnel ended."""
        reason = "error"
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._pump(client[0], target[1], "up"))
                tasks.create_task(self._pump(target[0], client[1], "down"))
                tasks.create_task(self._watch())
        except* _Ended as ended:
            first = ended.exceptions[0]
            reason = first.reason if isinstance(first, _Ended) else "error"
        return reason

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    direction: str) -> None:  # fmt: skip
        counter = self._metrics.tunnel_bytes.labels(direction)
        try:
            while True:
                await self._paid()
                data = await src.read(min(READ_SIZE, self.meter.available))
                if not data:
                    break
                view = memoryview(data)
                while view:
                    granted = self.meter.take(len(view), time.monotonic())
                    if not granted:  # the other direction used the rest meanwhile
                        await self._paid()
                        continue
                    if self._pace is not None:  # the edge's capacity: the free lane's turn
                        await self._pace(granted)
                    dst.write(view[:granted])
                    counter.inc(granted)
                    view = view[granted:]
                    await dst.drain()
            if direction == "down":
                raise _Ended("closed_by_client" if self._client_done else "closed_by_target")
            self._client_done = True
            if dst.can_write_eof():
                dst.write_eof()
        except OSError as exc:  # reset, broken pipe: either end went away abruptly
            raise _Ended("connection_error") from exc

    async def _paid(self) -> None:
        """Return once at least one paid byte is left to relay."""
        while self.meter.available <= 0:
            if self._refill():
                self.credit(1)
                continue
            self._credited.clear()
            await self._credited.wait()

    async def _watch(self) -> None:
        tick = min(1.0, self._pay_timeout / 4, self._idle_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            reason = self.meter.expired(time.monotonic(), self._pay_timeout, self._idle_timeout)
            if reason is not None:
                raise _Ended(reason)
