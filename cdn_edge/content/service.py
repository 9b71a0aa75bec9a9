"""Fetching content for requesters: cache lookup, origin fetch, chunk and sign.

``fetch`` answers as soon as the origin's status and headers are in and the
head is signed; a background task owned by the service keeps reading the
body, signs each chunk as it completes, stores it and wakes the requests
waiting for it. Storing overlaps reading: up to ``STORE_AHEAD`` signed chunks
wait for the db thread while the next one is read, so memory per fetch is a
few chunks plus the read buffer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, TypeVar

from cdn_edge.content import http_cache
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.index import ContentIndex, StoredContent
from cdn_edge.content.manifest_headers import manifest_headers, size_of
from cdn_edge.content.origin_fetch import OriginFetcher, OriginResponse, OriginUnreachable
from cdn_edge.content.range_pass import NOT_STORED, PassList, single_range
from cdn_edge.content.replication import Replicator
from requester.protocol import (
    DEFAULT_CHUNK_SIZE,
    ContentPublisher,
    MalformedMessage,
    ManifestHead,
    NodeKey,
    ProtocolError,
    Source,
    TorrentSource,
    UrlSource,
)
from requester.protocol.chunking import SignedChunk
from requester.protocol.manifest import (
    NONCE_SIZE,
    PARTIAL_CONTENT,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FORWARDED_REQUEST_HEADERS = ("accept", "accept-language", "user-agent")
"""The only request headers passed to origins: no cookies or credentials, the cache is shared."""
ENTRY_CACHE = 512
REPLICA_READ_AHEAD = 4
"""Chunks a replica pulls ahead of the one asked for: requesters read forward."""
MAX_BACKGROUND = 64
"""Cap on concurrent origin fetches and read-aheads, so a busy edge cannot pile up tasks."""
STORE_AHEAD = 2
"""Chunks of one fetch handed to the db thread and not yet stored, at most."""


class FetchFailed(ProtocolError):
    status = 502
    code = "fetch_failed"


class CacheStatus:
    HIT = "HIT"
    MISS = "MISS"
    REVALIDATED = "REVALIDATED"
    JOINED = "JOINED"
    """Joined a fetch of the same URL already in progress."""
    STALE = "STALE"
    """Origin unreachable while revalidating: the stored copy is served (stale-if-error)."""


@dataclass(frozen=True)
class FetchResult:
    entry: ContentEntry
    cache: str


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
        clock: Callable[[], float] = time.time,
        on_new_content: Callable[[bytes], None] = lambda _cid: None,
        replicator: Replicator | None = None,
    ) -> None:
        self._on_new_content = on_new_content
        self._replicator = replicator
        self._key = key
        self._index = index
        self._origin = origin
        self._db = db
        self._tasks = tasks
        self._chunk_size = chunk_size
        self._clock = clock
        self._live: dict[str, asyncio.Future[FetchResult]] = {}
        self._entries: OrderedDict[bytes, ContentEntry] = OrderedDict()
        self._fetching: set[asyncio.Task[None]] = set()
        self._pass = PassList()

    def cancel_fetches(self) -> None:
        """Stop reading origins (shutdown); unsealed content is dropped at next start."""
        for task in self._fetching:
            task.cancel()

    async def fetch(self, url: str, request_headers: Mapping[str, str]) -> FetchResult:
        """The content for ``url``: from the store if fresh, else from the origin. A Range
        request for a URL whose responses cannot be reused is passed to the origin
        (``range_pass``); otherwise the whole response is fetched and the requester reads
        the chunks it needs."""
        headers = {
            k.lower(): v
            for k, v in request_headers.items()
            if k.lower() in FORWARDED_REQUEST_HEADERS
        }
        now = self._clock()
        stored = self._match(await self._run(self._index.variants, url), url, headers)
        if stored is not None:
            if now < stored.policy.fresh_until:
                await self._run(self._index.touch, stored.content_id, now)
                return FetchResult(await self._load(stored), CacheStatus.HIT)
            if stored.policy.revalidatable:
                revalidated = await self._revalidate(stored, url, headers)
                if revalidated is not None:
                    return revalidated
        byte_range = single_range(request_headers)
        if byte_range is not None and self._pass.passing(url, now):
            ranged = {**headers, "range": byte_range}
            return await self._fetch_once(
                url, headers, lambda: self._origin.fetch(url, headers=ranged),
                policy=NOT_STORED, live_key=f"{url} {byte_range}",
            )  # fmt: skip
        return await self._fetch_once(
            url, headers, lambda: self._origin.fetch(url, headers=headers)
        )

    async def publish(self, key: str, source: Source, opener: Opener) -> FetchResult:
        """Content that is not an HTTP URL (a file in a torrent), under a cache ``key``:
        stored content is immutable and served as is; else it is read once through
        ``opener`` and chunked like an origin response."""
        stored = self._match(await self._run(self._index.variants, key), key, {})
        if stored is not None:
            await self._run(self._index.touch, stored.content_id, self._clock())
            return FetchResult(await self._load(stored), CacheStatus.HIT)
        return await self._fetch_once(key, {}, opener, source, IMMUTABLE)

    async def _fetch_once(
        self, url: str, headers: dict[str, str], opener: Opener, source: Source | None = None,
        policy: http_cache.CachePolicy | None = None, *, live_key: str | None = None,
    ) -> FetchResult:  # fmt: skip
        """Join a fetch of ``url`` already running (the same ``live_key``: a byte range is a
        fetch of its own), or start one; return once its head is signed."""
        key = live_key or url
        live = self._live.get(key)
        if live is not None:
            result = await asyncio.shield(live)
            return FetchResult(result.entry, CacheStatus.JOINED)
        future: asyncio.Future[FetchResult] = asyncio.get_running_loop().create_future()
        self._live[key] = future
        task = self._tasks.create_task(
            self._fetch_from_origin(url, headers, future, opener, source, policy)
        )
        self._fetching.add(task)
        task.add_done_callback(self._fetching.discard)
        task.add_done_callback(lambda _task: self._end_live(key, future))
        return await asyncio.shield(future)

    def _end_live(self, key: str, future: asyncio.Future[FetchResult]) -> None:
        if self._live.get(key) is future:
            del self._live[key]

    async def entry(self, content_id: bytes) -> ContentEntry | None:
        """Live or stored content by id, or None."""
        cached = self._entries.get(content_id)
        if cached is not None:
            self._entries.move_to_end(content_id)
            return cached
        stored = await self._run(self._index.get, content_id)
        if stored is not None and stored.seal is not None:
            entry = await self._load(stored)
            seal = entry.seal
            if seal and len(entry.statements) < seal.chunk_count and self._replicator:
                entry.providers = tuple(await self._replicator.providers(content_id))
            return entry
        return await self._find_replica(content_id)

    async def _find_replica(self, content_id: bytes) -> ContentEntry | None:
        if self._replicator is None:
            return None
        entry = await self._replicator.find(content_id)
        if entry is None:
            return None
        source = entry.head.source
        url = source.url if isinstance(source, UrlSource) else torrent_key(source)
        not_a_cache_entry = http_cache.CachePolicy(False, 0, None, None, ())
        await self._run(self._index.add_content, content_id, url, "", entry.head_bytes,
                        not_a_cache_entry, self._clock())  # fmt: skip
        await self._persist_seal(entry)
        self._remember(entry)
        self._on_new_content(content_id)
        return entry

    async def replicate_chunk(self, entry: ContentEntry, index: int) -> None:
        """Fetch a missing chunk of a replica from its providers (paying), store it."""
        assert self._replicator is not None and entry.is_replica
        await self._replicator.fetch_chunk(entry, index, self._store_chunk)
        await self._persist_seal(entry)
        self._read_ahead(entry, index)

    def _read_ahead(self, entry: ContentEntry, index: int) -> None:
        """Pull the next few chunks in the background: requesters read forward."""
        assert self._replicator is not None
        for ahead in range(index + 1, index + 1 + REPLICA_READ_AHEAD):
            if ahead in entry.statements or entry.past_end(ahead):
                continue
            if len(self._fetching) >= MAX_BACKGROUND:
                return
            task = self._tasks.create_task(self._quietly(entry, ahead))
            self._fetching.add(task)
            task.add_done_callback(self._fetching.discard)

    async def _quietly(self, entry: ContentEntry, index: int) -> None:
        """A read-ahead fetch: its failure only means the chunk is fetched on demand later."""
        assert self._replicator is not None
        try:
            await self._replicator.fetch_chunk(entry, index, self._store_chunk, ahead=True)
        except Exception as exc:
            log.debug("read-ahead of chunk %d failed: %s", index, exc)
            return
        await self._persist_seal(entry)

    async def _persist_seal(self, entry: ContentEntry) -> None:
        seal = entry.seal
        if seal is not None and entry.seal_bytes is not None:
            await self._run(self._index.seal, entry.content_id, entry.seal_bytes, seal.total_size)

    async def held_ids(self) -> list[bytes]:
        """Ids of all content this edge can serve (sealed in the store, or live)."""
        stored = await self._run(self._index.content_ids)
        live = [e.content_id for e in self._entries.values() if not e.done]
        return stored + live

    async def stored_bytes(self) -> int:
        return await self._run(self._index.stored_bytes)

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

    async def _revalidate(
        self, stored: StoredContent, url: str, headers: dict[str, str]
    ) -> FetchResult | None:
        conditional = {**headers, **http_cache.conditional_headers(stored.policy)}
        try:
            async with self._origin.fetch(url, headers=conditional) as resp:
                if resp.status != 304:
                    return None
                now = self._clock()
                refreshed = http_cache.policy(200, headers, resp.headers, now)
        except ProtocolError as exc:
            log.warning("revalidating %s failed, serving the stored copy: %s", url, exc)
            return FetchResult(await self._load(stored), CacheStatus.STALE)
        await self._run(self._index.touch, stored.content_id, now, refreshed.fresh_until)
        return FetchResult(await self._load(stored), CacheStatus.REVALIDATED)

    async def _fetch_from_origin(
        self, url: str, headers: dict[str, str], future: asyncio.Future[FetchResult],
        opener: Opener, source: Source | None, policy: http_cache.CachePolicy | None,
    ) -> None:  # fmt: skip
        entry: ContentEntry | None = None
        try:
            async with opener() as resp:
                entry = await self._start(url, headers, resp, source, policy)
                future.set_result(FetchResult(entry, CacheStatus.MISS))
                await self._stream_body(entry, resp)
        except ProtocolError as exc:
            if entry is None:
                if not future.done():
                    future.set_exception(exc)
            else:
                log.warning("fetch of %s failed mid-body: %s", url, exc)
                entry.fail(exc)
                await self._run(self._index.drop, entry.content_id)
        except Exception as exc:
            log.exception("fetch of %s failed", url)
            problem = FetchFailed(f"edge failed while fetching: {type(exc).__name__}")
            if entry is None and not future.done():
                future.set_exception(problem)
            elif entry is not None:
                entry.fail(problem)
                await self._run(self._index.drop, entry.content_id)
        finally:
            if not future.done():
                future.cancel()

    async def _start(self, url: str, headers: dict[str, str], resp: OriginResponse,
                     source: Source | None = None, policy: http_cache.CachePolicy | None = None
                     ) -> ContentEntry:  # fmt: skip
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
                self._pass.note(url, policy, now)
        key = http_cache.cache_key(url, policy.vary, headers)
        head_bytes = head.encode()
        await self._run(self._index.add_content, head.content_id, url, key, head_bytes, policy, now)
        entry = ContentEntry(head, head_bytes)
        self._remember(entry)
        self._on_new_content(head.content_id)
        return entry

    async def _stream_body(self, entry: ContentEntry, resp: OriginResponse) -> None:
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
        await self._run(self._index.seal, entry.content_id, seal_bytes, seal.total_size)
        entry.finish(seal_bytes)
        live = {e.content_id for e in self._entries.values() if not e.done}
        if await self._run(self._index.evict, live | {entry.content_id}):
            for gone in set(self._entries) - set(await self._run(self._index.content_ids)) - live:
                del self._entries[gone]

    def _store_chunk(self, entry: ContentEntry, index: int, sha256: bytes, data: bytes,
                     statement: bytes) -> asyncio.Future[None]:  # fmt: skip
        """Store a chunk on the db thread, file and row in one job (so eviction never sees
        a file without its row); the entry learns of it, in order, once it is stored."""
        stored = asyncio.get_running_loop().run_in_executor(
            self._db,
            partial(self._index.add_chunk, entry.content_id, index, sha256, data, statement),
        )

        def announce(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                entry.add_chunk(index, statement, sha256)

        stored.add_done_callback(announce)
        return stored

    def _store_signed(self, entry: ContentEntry, signed: SignedChunk) -> asyncio.Future[None]:
        st = signed.statement
        return self._store_chunk(entry, st.index, st.sha256, signed.data, st.encode())

    async def _load(self, stored: StoredContent) -> ContentEntry:
        cached = self._entries.get(stored.content_id)
        if cached is not None:
            return cached
        head = ManifestHead.decode(stored.head)
        entry = ContentEntry(head, stored.head)
        for index, sha256, statement in await self._run(self._index.statements, stored.content_id):
            entry.statements[index] = statement
            entry.hashes[index] = sha256
        if stored.seal is not None:
            entry.seal_bytes = stored.seal
        self._remember(entry)
        return entry

    def _remember(self, entry: ContentEntry) -> None:
        self._entries[entry.content_id] = entry
        self._entries.move_to_end(entry.content_id)
        while len(self._entries) > ENTRY_CACHE:
            self._entries.popitem(last=False)

    @staticmethod
    def _match(
        variants: list[StoredContent], url: str, headers: Mapping[str, str]
    ) -> StoredContent | None:
        for stored in variants:
            if http_cache.cache_key(url, stored.policy.vary, headers) == stored.cache_key:
                return stored
        return None

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, partial(fn, *args))


IMMUTABLE = http_cache.CachePolicy(True, 1e18, None, None, ())
"""A torrent file never changes under its infohash and path: fresh for ever."""
Opener = Callable[[], AbstractAsyncContextManager[OriginResponse]]
"""Opens the response to chunk: an origin fetch, or a torrent file read as one."""


def torrent_key(source: TorrentSource) -> str:
    """The cache key of a file in a torrent (the index's ``url`` column)."""
    return f"torrent:{source.infohash.hex()}/{source.path}"
