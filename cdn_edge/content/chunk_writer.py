"""Turning an origin response into content: a signed head, then signed chunks as the
body arrives, then the seal; each stored before any request is told of it.

The head is signed and indexed as soon as the status and headers are in, so
requesters can start before the body has been read. The loop cuts the body into
chunks (:mod:`cdn_edge.content.chunk_cutter`); each chunk is hashed, signed and
written to a temporary file in a worker thread, then renamed into the store with its
row in one job on the db thread, and only then announced by the entry, so no request
is told of a chunk the store does not hold. Up to ``AHEAD`` chunks of one fetch are
between the cut and the store while the next pieces are read, so memory per fetch is
a few chunks plus the read buffer, and both cores work. The seal is written after
every chunk's row (the db thread keeps the order), then the store is trimmed to its
cap. Nothing is fsynced: the store survives a crash of the process, not a power cut
(see :mod:`cdn_edge.content.index`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from cdn_edge.content import http_cache
from cdn_edge.content.chunk_cutter import ChunkCutter, Prepared, prepare
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.manifest_headers import manifest_headers, size_of
from cdn_edge.content.origin_fetch import OriginResponse, OriginUnreachable
from cdn_edge.content.range_pass import PassList
from requester.protocol import (
    MalformedMessage,
    ManifestHead,
    NodeKey,
    Source,
    UrlSource,
)
from requester.protocol.manifest import NONCE_SIZE, PARTIAL_CONTENT, chunk_size_for

T = TypeVar("T")

AHEAD = 2
"""Chunks of one fetch cut and not yet stored (being signed, written or indexed), at most:
2 keep the one worker busy. The edge's peak RSS growth in the 1 GiB stream bench was
5.5-7.5 MiB with 4 (and a 256 KiB read buffer), 5.3-6.0 with 2 (and 128 KiB), 3.6-4.3
before the worker."""
CUT_THREADS = 1
"""Worker threads signing and writing chunks, for all fetches of the edge (as before, when
the db thread wrote every file). With the default executor's six, four chunks at a time,
a 512 MiB pull cost the edge 7.2-9.9 CPU s/GiB against 5.2-6.8 with one (load ~9)."""


class ChunkWriter:
    def __init__(
        self,
        key: NodeKey,
        entries: Entries,
        passes: PassList,
        *,
        chunk_size: int,
        large_chunks: bool = True,
        clock: Callable[[], float],
        on_new_content: Callable[[bytes], None],
    ) -> None:
        self._key = key
        self._entries = entries
        self._index = entries.index
        self._passes = passes
        self._chunk_size = chunk_size
        self._large_chunks = large_chunks
        """Cut a large URL body in 1 MiB chunks (requester.protocol.manifest.chunk_size_for)."""
        self._clock = clock
        self._on_new_content = on_new_content
        self._cut = ThreadPoolExecutor(CUT_THREADS, thread_name_prefix="content-cut")

    def _size_for(self, size_hint: int, source: Source | None) -> int:
        """The chunk size to sign: larger for a large URL body (a torrent keeps its own, a
        market edge its 256 KiB: its lanes pace chunk by chunk)."""
        if self._large_chunks and source is None:
            return chunk_size_for(size_hint, self._chunk_size)
        return self._chunk_size

    def close(self) -> None:
        """Stop taking chunks (shutdown, once fetches are cancelled); queued ones still run."""
        self._cut.shutdown(wait=False)

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
                chunk_size=self._size_for(size_hint, source), size_hint=size_hint,
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
        cutter = ChunkCutter(entry.head.chunk_size)
        ahead: deque[asyncio.Task[bytes]] = deque()
        hashes: list[bytes] = []
        try:
            async for piece in resp.body:
                for data in cutter.feed(piece):
                    ahead.append(asyncio.create_task(self._ingest(entry, cutter.count - 1, data)))
                    if len(ahead) >= AHEAD:
                        hashes.append(await ahead.popleft())
            last = cutter.finish()
            if last is not None:
                ahead.append(asyncio.create_task(self._ingest(entry, cutter.count - 1, last)))
            while ahead:
                hashes.append(await ahead.popleft())
        finally:  # failed or cancelled: no chunk of it reaches the db thread after this
            for task in ahead:
                task.cancel()
            await asyncio.gather(*ahead, return_exceptions=True)
        seal = entry.head.seal(self._key, cutter.total, hashes)
        seal_bytes = seal.encode()
        await self._entries.run(self._index.seal, entry.content_id, seal_bytes, seal.total_size)
        entry.finish(seal_bytes)
        await self._entries.evict_for(entry)

    async def _ingest(self, entry: ContentEntry, index: int, data: bytes) -> bytes:
        """Sign and write chunk ``index`` in a worker thread, then store and announce it;
        its SHA-256. Cancelled before the store, it never reaches the db thread."""
        job = asyncio.get_running_loop().run_in_executor(
            self._cut, prepare, self._index.store, self._key, entry.head, index, data
        )
        ready = await _written(job, _prepared_tmp)
        st = ready.statement
        await self.store_chunk(entry, index, st.sha256, data, st.encode(), ready.tmp)
        return st.sha256

    async def store_fetched(self, entry: ContentEntry, index: int, sha256: bytes, data: bytes,
                            statement: bytes) -> None:  # fmt: skip
        """Store a verified chunk of another edge's content (a replica's, a sibling's copy)
        as a pulled one: its file written by the worker thread, renamed in with its row."""
        job = asyncio.get_running_loop().run_in_executor(
            self._cut, self._index.store.write_tmp, sha256, data
        )
        tmp = await _written(job, _same)
        await self.store_chunk(entry, index, sha256, data, statement, tmp)

    def store_chunk(self, entry: ContentEntry, index: int, sha256: bytes, data: bytes,
                    statement: bytes, tmp: Path | None = None) -> asyncio.Future[None]:  # fmt: skip
        """Store a chunk on the db thread, file and row in one job (so eviction never sees
        a file without its row; ``tmp``: the chunk's file already written by a worker);
        the entry learns of it once it is stored."""
        stored = self._entries.on_db_thread(
            partial(self._index.add_chunk, entry.content_id, index, sha256, data, statement, tmp)
        )

        def announce(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                entry.add_chunk(index, statement, sha256)
            elif tmp is not None:  # the job never ran, or failed before the rename
                tmp.unlink(missing_ok=True)

        stored.add_done_callback(announce)
        return stored


async def _written(job: asyncio.Future[T], tmp_of: Callable[[T], Path | None]) -> T:
    """The worker's result; if the caller is cancelled meanwhile, the file the worker still
    writes is removed once written."""
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        job.add_done_callback(partial(_discard, tmp_of))
        raise


def _discard(tmp_of: Callable[[T], Path | None], job: asyncio.Future[T]) -> None:
    tmp = None if job.cancelled() or job.exception() else tmp_of(job.result())
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def _prepared_tmp(ready: Prepared) -> Path | None:
    return ready.tmp


def _same(tmp: Path | None) -> Path | None:
    return tmp
