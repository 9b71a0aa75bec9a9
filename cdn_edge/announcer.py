"""Telling trackers what this edge provides, in batches, and again before expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from cdn_edge.tracker import Tracker
from requester.protocol import NodeKey, ProviderRecord, b64url_encode

log = logging.getLogger(__name__)
RECORD_TTL = 1800
BATCH = 256


class Announcer:
    def __init__(
        self,
        key: NodeKey,
        trackers: tuple[str, ...],
        own: Tracker,
        session: aiohttp.ClientSession,
        held: Callable[[], Awaitable[list[bytes]]],
    ) -> None:
        self._key = key
        self._trackers = trackers
        self._own = own
        self._session = session
        self._held = held
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.public_url: str | None = None

    def provide(self, content_id: bytes) -> None:
        """Announce ``content_id`` soon (called when content starts arriving)."""
        self._queue.put_nowait(content_id)

    async def run(self) -> None:
        """Forever: announce queued content at once, and everything every TTL/2."""
        next_full = time.monotonic()
        while True:
            if time.monotonic() >= next_full and self.public_url:
                ids = await self._held()
                next_full = time.monotonic() + RECORD_TTL / 2
            else:
                try:
                    async with asyncio.timeout(max(0.1, next_full - time.monotonic())):
                        ids = [await self._queue.get()]
                except TimeoutError:
                    continue
                while not self._queue.empty() and len(ids) < BATCH:
                    ids.append(self._queue.get_nowait())
            if self.public_url:
                await self._announce(ids)

    async def _announce(self, content_ids: list[bytes]) -> None:
        assert self.public_url is not None
        now = int(time.time())
        records = [
            ProviderRecord.create(self._key, cid, self.public_url, now + RECORD_TTL)
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
