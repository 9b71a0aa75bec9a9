"""Turning an origin response into content: a signed head, then signed chunks as the
body arrives, then the seal; each stored before any request is told of it.

The head is signed and indexed as soon as the status and headers are in, so
requesters can start before the body has been read. The loop cuts the body at chunk
boundaries (the protocol's streaming publisher, :mod:`requester.protocol.publishing`); a
worker thread hashes each part and appends it to its chunk's temporary file
(:mod:`cdn_edge.content.chunk_files`), and signs the chunk at its end; the file is
then renamed into the store with its row in one job on the db thread, and only then
announced by the entry, so no request is told of a chunk the store does not hold. At
most ``BYTES_AHEAD`` bytes of one fetch wait for the worker while the next pieces are
read, so memory per fetch is that plus the read buffer, and both cores work. The seal
is written after every chunk's row (the db thread keeps the order), then the store is
trimmed to its cap. Nothing is fsynced: the store survives a crash of the process, not a
power cut (see :mod:`cdn_edge.content.index`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from cdn_edge.content import http_cache
from cdn_edge.content.chunk_files import ChunkFiles, Prepared
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
from requester.protocol.publishing import ChunkCutter

T = TypeVar("T")

BYTES_AHEAD = 512 * 1024
"""Body bytes of one fetch cut and not yet written by the worker, at most (what the fetch
holds besides the HTTP client's read buffer). When whole chunks were queued (2 of up to
1 MiB), the edge's peak RSS growth in the 1 GiB stream bench was 4.5-5.9 MiB."""
AHEAD = 4
"""Chunks of one fetch ended and not yet stored (being signed or indexed), at most; they
hold no bytes, only their file's name."""
CUT_THREADS = 1
"""Worker threads signing and writing chunks, for all fetches of the edge (as before, when
the db thread wrote every file). With the default executor's six, four chunks at a time,
a 512 MiB pull cost the edge 7.2-9.9 CPU s/GiB against 5.2-6.8 with one (load ~9). One
thread also takes a body's parts in the order they were cut (ChunkFiles refuses a part
out of order)."""


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
        files = ChunkFiles(self._index.store, self._key, entry.head)
        queued: deque[tuple[Future[Prepared | None], int]] = deque()  # parts not yet written
        ahead: deque[tuple[asyncio.Task[None], Future[Prepared | None]]] = deque()
        held, done = 0, False
        try:
            async for piece in resp.body:
                for cut in cutter.feed(piece):
                    job = self._cut.submit(files.take, cut)
                    queued.append((job, len(cut.data)))
                    held += len(cut.data)
                    if cut.ends:
                        ahead.append((self._ingest(entry, cut.chunk, job), job))
                while queued and (queued[0][0].done() or held > BYTES_AHEAD):
                    job, size = queued.popleft()
                    await asyncio.shield(asyncio.wrap_future(job))  # raises what the write raised
                    held -= size
                while len(ahead) > AHEAD or (ahead and ahead[0][0].done()):
                    await ahead.popleft()[0]
            last = cutter.finish()
            if last is not None:
                job = self._cut.submit(files.take, last)
                ahead.append((self._ingest(entry, last.chunk, job), job))
            while ahead:
                await ahead.popleft()[0]
            done = True
        finally:  # failed or cancelled: no chunk of it reaches the db thread after this
            if not done:
                self._abort(files)
            for task, _ in ahead:
                task.cancel()
            await asyncio.gather(*(task for task, _ in ahead), return_exceptions=True)
            for _, job in ahead:  # a file the worker still writes, or a task never started
                job.add_done_callback(partial(_discard, _prepared_tmp))
        seal = files.seal()  # every chunk's job has run: each was awaited above
        seal_bytes = seal.encode()
        await self._entries.run(self._index.seal, entry.content_id, seal_bytes, seal.total_size)
        entry.finish(seal_bytes)
        await self._entries.evict_for(entry)

    def _abort(self, files: ChunkFiles) -> None:
        """Remove the chunk file being written, after the parts queued before (the worker
        takes jobs in order), or now if the worker is shut down."""
        try:
            self._cut.submit(files.abort)
        except RuntimeError:
            files.abort()

    def _ingest(self, entry: ContentEntry, index: int, job: Future[Prepared | None]
                ) -> asyncio.Task[None]:  # fmt: skip
        """Store and announce chunk ``index`` once the worker has signed and written it."""
        return asyncio.create_task(self._store_prepared(entry, index, job))

    async def _store_prepared(self, entry: ContentEntry, index: int,
                              job: Future[Prepared | None]) -> None:  # fmt: skip
        """Store the chunk once the worker has written it. Cancelled before the store, the
        chunk never reaches the db thread."""
        ready = await _written(asyncio.wrap_future(job), _prepared_tmp)
        assert ready is not None  # the job that ends a chunk returns it
        st = ready.statement
        await self.store_chunk(entry, index, st.sha256, st.size, st.encode(), ready.tmp)

    async def store_fetched(self, entry: ContentEntry, index: int, sha256: bytes, data: bytes,
                            statement: bytes) -> None:  # fmt: skip
        """Store a verified chunk of another edge's content (a replica's, a sibling's copy)
        as a pulled one: its file written by the worker thread, renamed in with its row."""
        job = asyncio.get_running_loop().run_in_executor(
            self._cut, self._index.store.write_tmp, sha256, data
        )
        tmp = await _written(job, _same)
        await self.store_chunk(entry, index, sha256, len(data), statement, tmp, data)

    def store_chunk(self, entry: ContentEntry, index: int, sha256: bytes, size: int,
                    statement: bytes, tmp: Path | None, data: bytes | None = None
                    ) -> asyncio.Future[None]:  # fmt: skip
        """Store a chunk on the db thread, file and row in one job (so eviction never sees
        a file without its row; ``tmp``: the chunk's file already written by a worker, or
        None to write ``data`` if the store lacks it); the entry learns of it once stored."""
        stored = self._entries.on_db_thread(
            partial(
                self._index.add_chunk, entry.content_id, index, sha256, size, statement, tmp, data
            )
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


def _discard(tmp_of: Callable[[T], Path | None], job: asyncio.Future[T] | Future[T]) -> None:
    tmp = None if job.cancelled() or job.exception() else tmp_of(job.result())
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def _prepared_tmp(ready: Prepared | None) -> Path | None:
    return None if ready is None else ready.tmp


def _same(tmp: Path | None) -> Path | None:
    return tmp
