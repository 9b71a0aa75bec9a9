"""The edge's content as the routes see it: fetch by URL, publish a torrent file, find
an entry by id, read its chunks.

One object over the parts, each in its own module: the cache lookup and
revalidation (:mod:`~cdn_edge.content.cache_lookup`), one fetch per URL
(:mod:`~cdn_edge.content.fetch_join`), signing and storing what the origin sends
(:mod:`~cdn_edge.content.chunk_writer`), replicas of other edges' content
(:mod:`~cdn_edge.content.replica_pulls`) and the entries in memory
(:mod:`~cdn_edge.content.entries`). ``fetch`` answers as soon as the origin's
status and headers are in and the head is signed; a background task owned by the
service keeps reading the body, and chunk requests wait on the entry for the chunks
still to come.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from cdn_edge.content.cache_lookup import IMMUTABLE, CacheLookup, torrent_key
from cdn_edge.content.chunk_writer import ChunkWriter
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.fetch_join import (
    Background,
    CacheStatus,
    FetchFailed,
    FetchJoin,
    FetchResult,
    Opener,
)
from cdn_edge.content.index import ContentIndex
from cdn_edge.content.origin_fetch import OriginFetcher
from cdn_edge.content.range_pass import PassList
from cdn_edge.content.replica_pulls import ReplicaPulls
from cdn_edge.content.replication import Replicator
from cdn_edge.content.sibling_fetch import SiblingFetch, Siblings
from requester.chunk_client import ChunkUnavailable, ContentFailed
from requester.protocol import DEFAULT_CHUNK_SIZE, NodeKey, ProviderRecord, Source

__all__ = [
    "IMMUTABLE",
    "CacheStatus",
    "ContentService",
    "FetchFailed",
    "FetchResult",
    "Opener",
    "torrent_key",
]


class ContentService:
    def __init__(
        self,
        key: NodeKey,
        index: ContentIndex,
        origin: OriginFetcher,
        db: ThreadPoolExecutor,
        tasks: asyncio.TaskGroup,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        large_chunks: bool = True,
        clock: Callable[[], float] = time.time,
        on_new_content: Callable[[bytes], None] = lambda _cid: None,
        replicator: Replicator | None = None,
    ) -> None:
        self._index = index
        self._entries = Entries(index, db)
        self._background = Background(tasks)
        passes = PassList()
        writer = ChunkWriter(key, self._entries, passes, chunk_size=chunk_size, clock=clock,
                             large_chunks=large_chunks, on_new_content=on_new_content)  # fmt: skip
        join = FetchJoin(writer, self._entries, self._background)
        self._lookup = CacheLookup(self._entries, origin, join, passes, clock=clock)
        self._store_chunk = writer.store_fetched
        self._writer = writer
        self._node_id = key.node_id
        self._clock = clock
        self._on_new_content = on_new_content
        self._replicator = replicator
        self._replicas = None
        if replicator is not None:
            self._replicas = ReplicaPulls(replicator, self._entries, writer.store_fetched,
                                          self._background, clock=clock,
                                          on_new_content=on_new_content)  # fmt: skip

    def cancel_fetches(self) -> None:
        """Stop reading origins (shutdown); unsealed content is dropped at next start."""
        self._background.cancel()
        self._writer.close()

    def use_siblings(self, siblings: Siblings, remember: Callable[[ProviderRecord], None]) -> None:
        """Ask ``siblings`` for a fresh copy of a URL before its origin (sibling caches)."""
        assert self._replicator is not None
        self._lookup.siblings = SiblingFetch(
            siblings, self._replicator, self._entries, self._store_chunk, clock=self._clock,
            on_new_content=self._on_new_content, remember=remember,
        )  # fmt: skip

    async def fresh_urls(self, limit: int) -> list[str]:
        """URLs held fresh now, most recently used first (announced to siblings)."""
        return await self._entries.run(self._index.fresh_urls, self._clock(), limit)

    async def fetch(self, url: str, request_headers: Mapping[str, str]) -> FetchResult:
        """The content for ``url``: from the store if fresh, else from a sibling's copy or
        the origin."""
        result = await self._lookup.fetch(url, request_headers)
        entry = result.entry
        if entry.head.edge_id != self._node_id and not entry.providers and self._replicas:
            seal = entry.seal  # a sibling's copy reloaded from the index: who has the rest
            if seal is not None and len(entry.statements) < seal.chunk_count:
                entry.providers = await self._replicas.providers(entry.content_id)
        return result

    async def publish(self, key: str, source: Source, opener: Opener) -> FetchResult:
        """Content that is not an HTTP URL (a file in a torrent), under a cache ``key``."""
        return await self._lookup.publish(key, source, opener)

    async def entry(self, content_id: bytes) -> ContentEntry | None:
        """Live or stored content by id, or a replica of it found now; None if nobody has it."""
        cached = self._entries.get(content_id)
        if cached is not None:
            return cached
        stored = await self._entries.run(self._index.get, content_id)
        if stored is not None and stored.seal is not None:
            entry = await self._entries.load(stored)
            seal = entry.seal
            if seal and len(entry.statements) < seal.chunk_count and self._replicas:
                entry.providers = await self._replicas.providers(content_id)
            return entry
        if self._replicas is None:
            return None
        return await self._replicas.find(content_id)

    async def replicate_chunk(self, entry: ContentEntry, index: int, *,
                              unpaid: bool = False) -> None:  # fmt: skip
        """Fetch a missing chunk of a replica from its providers (paying), store it;
        ``unpaid``: for a request nobody paid for, paying only configured peers."""
        assert self._replicas is not None
        try:
            await self._replicas.pull(entry, index, unpaid=unpaid)
        except (ContentFailed, ChunkUnavailable) as exc:
            siblings = self._lookup.siblings
            failed = isinstance(exc, ContentFailed) or exc.status == 502  # not 503, 416
            if failed and siblings is not None and siblings.copied(entry.content_id):
                await siblings.drop(entry, exc)
            raise

    async def held_ids(self) -> list[bytes]:
        """Ids of all content this edge can serve (sealed in the store, or live)."""
        return await self._entries.held_ids()

    async def stored_bytes(self) -> int:
        return await self._entries.run(self._index.stored_bytes)

    def open_chunk(self, entry: ContentEntry, index: int) -> BinaryIO:
        """The chunk's file, open for reading (on the loop: a local open costs microseconds,
        less than a hop to a thread; once open, eviction cannot take the bytes away)."""
        try:
            return self._index.store.open(entry.hashes[index])
        except FileNotFoundError:
            raise FetchFailed(f"chunk {index} is missing from this edge's store") from None

    async def chunk(self, entry: ContentEntry, index: int) -> bytes:
        # Read on the default pool, not the db thread, where a live fetch's writes queue.
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, self._index.store.get, entry.hashes[index])
        if data is None:
            raise FetchFailed(f"chunk {index} is missing from this edge's store")
        return data
