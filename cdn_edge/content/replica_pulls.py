"""Content another edge fetched, held here as a replica: registered when first asked
for, then filled chunk by chunk as requesters ask, plus a few chunks ahead.

The paying and checking is :class:`~cdn_edge.content.replication.Replicator`'s; this
part keeps the replica in this edge's index and memory like its own content, so the
routes serve both alike. A replica's head and seal are stored when it is found (it
is served, and announced, from then on), each chunk is stored before the entry
announces it, and read-aheads run in the background under the service's task cap,
never for a request: one that fails only means the chunk is pulled on demand later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cdn_edge.content import http_cache
from cdn_edge.content.cache_lookup import torrent_key
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.fetch_join import MAX_BACKGROUND, Background
from cdn_edge.content.replication import Replicator, StoreChunk
from requester.protocol import UrlSource

log = logging.getLogger(__name__)

REPLICA_READ_AHEAD = 4
"""Chunks a replica pulls ahead of the one asked for: requesters read forward."""
NOT_A_CACHE_ENTRY = http_cache.CachePolicy(False, 0, None, None, ())
"""A replica is found by its id, never by its URL: its cache key is empty, which no
request's key matches."""


class ReplicaPulls:
    def __init__(
        self,
        replicator: Replicator,
        entries: Entries,
        store_chunk: StoreChunk,
        background: Background,
        *,
        clock: Callable[[], float],
        on_new_content: Callable[[bytes], None],
    ) -> None:
        self._replicator = replicator
        self._entries = entries
        self._store_chunk = store_chunk
        self._background = background
        self._clock = clock
        self._on_new_content = on_new_content
        self._finding: dict[bytes, asyncio.Future[ContentEntry | None]] = {}

    async def providers(self, content_id: bytes) -> tuple[str, ...]:
        """Where the chunks this edge lacks of ``content_id`` can be pulled from."""
        return tuple(await self._replicator.providers(content_id))

    async def find(self, content_id: bytes) -> ContentEntry | None:
        """A replica of ``content_id`` from the providers the trackers list, stored and
        announced as content this edge holds; None if nobody has it.

        One search per content however many requests ask at once, run as the service's
        own task so a requester going away does not end it for the others: every request
        must get the same entry, or a chunk pulled into one is never seen by the others.
        """
        finding = self._finding.get(content_id)
        if finding is None:
            finding = asyncio.get_running_loop().create_future()
            finding.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved
            self._finding[content_id] = finding
            task = self._background.start(self._find(content_id, finding))
            task.add_done_callback(lambda _task: self._end_find(content_id, finding))
        return await asyncio.shield(finding)

    def _end_find(self, content_id: bytes, finding: asyncio.Future[ContentEntry | None]) -> None:
        if self._finding.get(content_id) is finding:
            del self._finding[content_id]

    async def _find(self, content_id: bytes, finding: asyncio.Future[ContentEntry | None]) -> None:
        try:
            finding.set_result(await self._found(content_id))
        except Exception as exc:
            finding.set_exception(exc)
        finally:
            if not finding.done():
                finding.cancel()

    async def _found(self, content_id: bytes) -> ContentEntry | None:
        found = await self._replicator.find(content_id)
        if found is None:
            return None
        source = found.head.source
        url = source.url if isinstance(source, UrlSource) else torrent_key(source)
        await self._entries.run(self._entries.index.add_content, content_id, url, "",
                                found.head_bytes, NOT_A_CACHE_ENTRY, self._clock())  # fmt: skip
        await self._entries.persist_seal(found)
        entry = self._entries.keep(found)  # a request may have loaded the row just stored
        if not entry.providers:
            entry.providers = found.providers
        self._on_new_content(content_id)
        return entry

    async def pull(self, entry: ContentEntry, index: int, *, unpaid: bool = False) -> None:
        """Fetch a missing chunk of a replica from its providers (paying), store it;
        ``unpaid``: for a request nobody paid for (see ``Replicator.fetch_chunk``)."""
        assert entry.is_replica
        await self._replicator.fetch_chunk(entry, index, self._store_chunk, unpaid=unpaid)
        await self._entries.persist_seal(entry)
        self._read_ahead(entry, index)

    def _read_ahead(self, entry: ContentEntry, index: int) -> None:
        """Pull the next few chunks in the background: requesters read forward."""
        for ahead in range(index + 1, index + 1 + REPLICA_READ_AHEAD):
            if ahead in entry.statements or entry.past_end(ahead):
                continue
            if len(self._background) >= MAX_BACKGROUND:
                return
            self._background.start(self._quietly(entry, ahead))

    async def _quietly(self, entry: ContentEntry, index: int) -> None:
        """A read-ahead pull: its failure only means the chunk is pulled on demand later."""
        try:
            await self._replicator.fetch_chunk(entry, index, self._store_chunk, ahead=True)
        except Exception as exc:
            log.debug("read-ahead of chunk %d failed: %s", index, exc)
            return
        await self._entries.persist_seal(entry)
