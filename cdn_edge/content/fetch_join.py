"""One origin fetch at a time per URL: requests for a URL being fetched join that fetch.

A thousand requesters asking for the same new URL cost the origin one request and
the edge one copy (single-flight). The first request starts a task owned by the
service's task group and waits for the head; later ones wait on the same future and
are told they ``JOINED``. The task outlives the requests: it reads the body to its
end even if every requester went away, since the content is then stored for the
next. A failure before the head reaches every waiting request; a failure after it
fails the entry, so every chunk request still waiting hears of it, and the unsealed
content is dropped from the index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from cdn_edge.content import http_cache
from cdn_edge.content.chunk_writer import ChunkWriter
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.origin_fetch import OriginResponse
from requester.errors import Refusal, ServiceRefusal
from requester.protocol import Source

log = logging.getLogger(__name__)

MAX_BACKGROUND = 64
"""Cap on concurrent origin fetches and read-aheads, so a busy edge cannot pile up tasks."""

Opener = Callable[[], AbstractAsyncContextManager[OriginResponse]]
"""Opens the response to chunk: an origin fetch, or a torrent file read as one."""


class FetchFailed(ServiceRefusal):
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
    SIBLING = "SIBLING"
    """A sibling edge's fresh copy, found through the DHT (``content/sibling_fetch.py``)."""


@dataclass(frozen=True)
class FetchResult:
    entry: ContentEntry
    cache: str


class Background:
    """The content service's own tasks (origin fetches, replica read-aheads): counted
    so read-aheads stay under :data:`MAX_BACKGROUND`, and cancelled at shutdown."""

    def __init__(self, tasks: asyncio.TaskGroup) -> None:
        self._tasks = tasks
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._tasks.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def cancel(self) -> None:
        for task in self._running:
            task.cancel()


class FetchJoin:
    def __init__(self, writer: ChunkWriter, entries: Entries, background: Background) -> None:
        self._writer = writer
        self._entries = entries
        self._background = background
        self._live: dict[str, asyncio.Future[FetchResult]] = {}

    async def once(
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
        task = self._background.start(self._fetch(url, headers, future, opener, source, policy))
        task.add_done_callback(lambda _task: self._end_live(key, future))
        return await asyncio.shield(future)

    def _end_live(self, key: str, future: asyncio.Future[FetchResult]) -> None:
        if self._live.get(key) is future:
            del self._live[key]

    async def _fetch(
        self, url: str, headers: dict[str, str], future: asyncio.Future[FetchResult],
        opener: Opener, source: Source | None, policy: http_cache.CachePolicy | None,
    ) -> None:  # fmt: skip
        entry: ContentEntry | None = None
        try:
            async with opener() as resp:
                entry = await self._writer.start(url, headers, resp, source, policy)
                future.set_result(FetchResult(entry, CacheStatus.MISS))
                await self._writer.stream_body(entry, resp)
        except Refusal as exc:
            if entry is None:
                if not future.done():
                    future.set_exception(exc)
            else:
                log.warning("fetch of %s failed mid-body: %s", url, exc)
                entry.fail(exc)
                await self._entries.run(self._entries.index.drop, entry.content_id)
        except Exception as exc:
            log.exception("fetch of %s failed", url)
            problem = FetchFailed(f"edge failed while fetching: {type(exc).__name__}")
            if entry is None and not future.done():
                future.set_exception(problem)
            elif entry is not None:
                entry.fail(problem)
                await self._entries.run(self._entries.index.drop, entry.content_id)
        finally:
            if not future.done():
                future.cancel()
