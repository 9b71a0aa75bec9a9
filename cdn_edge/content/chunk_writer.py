"""Turning an origin response into content: a signed head, then signed chunks as the
body arrives, then the seal; each stored before any request is told of it.

The head is signed and indexed as soon as the status and headers are in, so
requesters can start before the body has been read. Each chunk is stored (file and
row in one job on the db thread) before the entry announces it, so no request is
told of a chunk the store does not hold. Storing overlaps reading: up to
``STORE_AHEAD`` signed chunks wait for the db thread while the next one is read, so
memory per fetch is a few chunks plus the read buffer. The seal is written after
every chunk's row (the db thread keeps the order), then the store is trimmed to its
cap.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from functools import partial

from cdn_edge.content import http_cache
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.manifest_headers import manifest_headers, size_of
from cdn_edge.content.origin_fetch import OriginResponse, OriginUnreachable
from cdn_edge.content.range_pass import PassList
from requester.protocol import (
    ContentPublisher,
    MalformedMessage,
    ManifestHead,
    NodeKey,
    Source,
    UrlSource,
)
from requester.protocol.chunking import SignedChunk
from requester.protocol.manifest import NONCE_SIZE, PARTIAL_CONTENT

STORE_AHEAD = 2
"""Chunks of one fetch handed to the db thread and not yet stored, at most."""


class ChunkWriter:
    def __init__(
        self,
        key: NodeKey,
        entries: Entries,
        passes: PassList,
        *,
        chunk_size: int,
        clock: Callable[[], float],
        on_new_content: Callable[[bytes], None],
    ) -> None:
        self._key = key
        self._entries = entries
        self._index = entries.index
        self._passes = passes
        self._chunk_size = chunk_size
        self._clock = clock
        self._on_new_content = on_new_content

    async def start(self, url: str, headers: dict[str, str], resp: OriginResponse,
                    source: Source | None = None, policy: http_cache.CachePolicy | None = None
                    ) -> ContentEntry:  # fmt: skip
        """Sign and index the head of ``resp``; the entry requests can wait on.

        ``policy`` None: the response's own caching rules, and a URL whose response
        cannot be reused is noted for passing Range requests through."""
        now = self._clock()
        size_hint = size_of(resp.headers)
        kept = manifest_headers(resp.headers, resp.status)
        if resp.status == PARTIAL_CONTENT and not any(n == "content-range" for n, _ in kept):
            raise OriginUnreachable("origin sent a 206 without one valid Content-Range")
        try:
            head = ManifestHead.create(
                self._key, source=source or UrlSource(url), status=resp.status, headers=kept,
                created_at=int(now), nonce=secrets.token_bytes(NONCE_SIZE),
                chunk_size=self._chunk_size, size_hint=size_hint,
            )  # fmt: skip
        except MalformedMessage as exc:  # e.g. status 999: the origin's fault, not the requester's
            raise OriginUnreachable(
                f"origin sent a response no manifest can hold: {exc.message}"
            ) from exc
        if policy is None:
            policy = http_cache.policy(resp.status, headers, resp.headers, now)
            if source is None:
                self._passes.note(url, policy, now)
        key = http_cache.cache_key(url, policy.vary, headers)
        head_bytes = head.encode()
        await self._entries.run(
            self._index.add_content, head.content_id, url, key, head_bytes, policy, now
        )
        entry = ContentEntry(head, head_bytes)
        self._entries.remember(entry)
        self._on_new_content(head.content_id)
        return entry

    async def stream_body(self, entry: ContentEntry, resp: OriginResponse) -> None:
        """Read the body to its end: sign, store and announce each chunk, then seal."""
        publisher = ContentPublisher(self._key, entry.head)
        storing: deque[asyncio.Future[None]] = deque()
        try:
            async for piece in resp.body:
                for signed in publisher.feed(piece):
                    storing.append(self._store_signed(entry, signed))
                    if len(storing) >= STORE_AHEAD:
                        await storing.popleft()
            last, seal = publisher.finish()
            storing.extend(self._store_signed(entry, signed) for signed in last)
            while storing:
                await storing.popleft()
        finally:  # failed or cancelled: drop stores not started, mute errors of the rest
            for future in storing:
                if not future.cancel() and not future.cancelled():
                    future.exception()
        seal_bytes = seal.encode()
        await self._entries.run(self._index.seal, entry.content_id, seal_bytes, seal.total_size)
        entry.finish(seal_bytes)
        await self._entries.evict_for(entry)

    def store_chunk(self, entry: ContentEntry, index: int, sha256: bytes, data: bytes,
                    statement: bytes) -> asyncio.Future[None]:  # fmt: skip
        """Store a chunk on the db thread, file and row in one job (so eviction never sees
        a file without its row); the entry learns of it, in order, once it is stored."""
        stored = self._entries.on_db_thread(
            partial(self._index.add_chunk, entry.content_id, index, sha256, data, statement)
        )

        def announce(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                entry.add_chunk(index, statement, sha256)

        stored.add_done_callback(announce)
        return stored

    def _store_signed(self, entry: ContentEntry, signed: SignedChunk) -> asyncio.Future[None]:
        st = signed.statement
        return self.store_chunk(entry, st.index, st.sha256, signed.data, st.encode())
