"""Telling trackers what this edge provides, in batches, and again before expiry.

Records carry the edge's market terms as signed (``ATP\\x02``: reserve, last clearing
price, capacity, slots), so when the clearing price or the reserve moves, everything
held is announced again: at most once per market round, once per
:data:`REANNOUNCE_GAP` and at :data:`REANNOUNCE_RATE` records a second on average, so
a tracker's copy is the last clearing price within a round or so (docs/market.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from cdn_edge.tracker import Tracker
from requester.protocol import NodeKey, ProviderRecord, b64url_encode
from requester.protocol.node_advert import Market

log = logging.getLogger(__name__)
RECORD_TTL = 1800
BATCH = 256
REANNOUNCE_GAP = 10.0
"""Least seconds between two announces of everything held for a change of terms."""
REANNOUNCE_RATE = 100
"""Records a second a change of terms may cost on average: a big store waits longer."""
TERMS_CHECK = 1.0
"""Seconds between two looks at the terms."""


class Announcer:
    def __init__(
        self,
        key: NodeKey,
        trackers: tuple[str, ...],
        own: Tracker,
        session: aiohttp.ClientSession,
        held: Callable[[], Awaitable[list[bytes]]],
        terms: Callable[[], Market | None] = lambda: None,
    ) -> None:
        self._key = key
        self._trackers = trackers
        self._own = own
        self._session = session
        self._held = held
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.public_url: str | None = None
        self.terms = terms
        """The market's terms now; None signs version 1 records."""
        self._signed: Market | None = None
        self._terms_due = 0.0
        self.full_announces = 0
        """Announces of everything held since start (tests read it)."""

    def provide(self, content_id: bytes) -> None:
        """Announce ``content_id`` soon (called when content starts arriving)."""
        self._queue.put_nowait(content_id)

    async def run(self) -> None:
        """Forever: announce queued content at once, everything every TTL/2, and
        everything again when the terms change (bounded, see the module doc)."""
        next_full = time.monotonic()
        while True:
            now = time.monotonic()
            if self.public_url and (now >= next_full or self._terms_moved(now)):
                terms = self.terms()
                ids = await self._held()
                next_full = now + RECORD_TTL / 2
                gap = max(REANNOUNCE_GAP, terms.round_seconds if terms else 0,
                          len(ids) / REANNOUNCE_RATE)  # fmt: skip
                self._signed, self._terms_due = terms, now + gap
                self.full_announces += 1
                await self._announce(ids, terms)
                continue
            try:
                wait = min(next_full - now, TERMS_CHECK)
                async with asyncio.timeout(max(0.1, wait)):
                    ids = [await self._queue.get()]
            except TimeoutError:
                continue
            while not self._queue.empty() and len(ids) < BATCH:
                ids.append(self._queue.get_nowait())
            if self.public_url:
                await self._announce(ids, self.terms())

    def _terms_moved(self, now: float) -> bool:
        return now >= self._terms_due and self.terms() != self._signed

    async def _announce(self, content_ids: list[bytes], terms: Market | None) -> None:
        assert self.public_url is not None
        now = int(time.time())
        records = [
            ProviderRecord.create(self._key, cid, self.public_url, now + RECORD_TTL, terms)
            for cid in content_ids
        ]
        for record in records:
            self._own.add(record, now)
        for start in range(0, len(records), BATCH):
            body = {"records": [b64url_encode(r.encode()) for r in records[start : start + BATCH]]}
            for tracker in self._trackers:
                try:
                    async with self._session.post(
                        f"{tracker.rstrip('/')}/v1/announce", json=body
                    ) as r:
                        if r.status != 200:
                            log.warning("tracker %s refused announce: %s", tracker, r.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("tracker %s unreachable: %s", tracker, exc)
