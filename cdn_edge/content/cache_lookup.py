"""Answering a fetch from the store when HTTP caching allows it, else from the origin.

The edge is a shared cache (rules in :mod:`cdn_edge.content.http_cache`): a stored
response still fresh is a ``HIT``; a stale one with a validator is revalidated with
a conditional request (``REVALIDATED`` on a 304, ``STALE`` when the origin cannot be
reached: serving the stored copy beats an error). Otherwise the origin is fetched
once however many requests want the URL (:mod:`cdn_edge.content.fetch_join`), unless a
sibling edge has a fresh copy (:mod:`cdn_edge.content.sibling_fetch`). A request with
``Cache-Control: only-if-cached`` (how siblings ask) gets a fresh stored copy or
``504 not_cached``, never an origin fetch (RFC 9111, 5.2.1.7). Only
a few request headers reach origins, so a response cannot depend on cookies or
credentials of the one requester who happened to fetch it first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from cdn_edge.content import http_cache
from cdn_edge.content.entries import Entries
from cdn_edge.content.fetch_join import CacheStatus, FetchJoin, FetchResult, Opener
from cdn_edge.content.index import StoredContent
from cdn_edge.content.origin_fetch import OriginFetcher
from cdn_edge.content.range_pass import NOT_STORED, PassList, single_range
from cdn_edge.content.sibling_fetch import SiblingFetch
from requester.errors import Refusal, ServiceRefusal
from requester.protocol import Source, TorrentSource

log = logging.getLogger(__name__)

FORWARDED_REQUEST_HEADERS = ("accept", "accept-language", "user-agent")
"""The only request headers passed to origins: no cookies or credentials, the cache is shared."""
IMMUTABLE = http_cache.CachePolicy(True, 1e18, None, None, ())
"""A torrent file never changes under its infohash and path: fresh for ever."""


class NotCached(ServiceRefusal):
    """``only-if-cached`` asked for, and this edge holds no fresh copy (RFC 9111: 504)."""

    status = 504
    code = "not_cached"


class CacheLookup:
    def __init__(self, entries: Entries, origin: OriginFetcher, join: FetchJoin,
                 passes: PassList, *, clock: Callable[[], float]) -> None:  # fmt: skip
        self._entries = entries
        self._index = entries.index
        self._origin = origin
        self._join = join
        self._passes = passes
        self._clock = clock
        self.siblings: SiblingFetch | None = None
        """Set when sibling caches are on (``--dht`` without ``--no-sibling-caches``)."""

    async def fetch(self, url: str, request_headers: Mapping[str, str]) -> FetchResult:
        """The content for ``url``: from the store if fresh, else from the origin. A Range
        request for a URL whose responses cannot be reused is passed to the origin
        (:mod:`cdn_edge.content.range_pass`); otherwise the whole response is fetched and
        the requester reads the chunks it needs."""
        headers = {
            k.lower(): v
            for k, v in request_headers.items()
            if k.lower() in FORWARDED_REQUEST_HEADERS
        }
        now = self._clock()
        stored = self._match(await self._entries.run(self._index.variants, url), url, headers)
        if stored is not None and now < stored.policy.fresh_until:
            await self._entries.run(self._index.touch, stored.content_id, now)
            return FetchResult(await self._entries.load(stored), CacheStatus.HIT)
        if "only-if-cached" in http_cache.cache_control(request_headers.items()):
            raise NotCached(f"this edge holds no fresh copy of {url[:200]}")
        asked_origin = stored is not None and stored.policy.revalidatable
        if stored is not None and asked_origin:
            revalidated = await self._revalidate(stored, url, headers)
            if revalidated is not None:
                return revalidated
        byte_range = single_range(request_headers)
        if byte_range is not None and self._passes.passing(url, now):
            ranged = {**headers, "range": byte_range}
            return await self._join.once(
                url, headers, lambda: self._origin.fetch(url, headers=ranged),
                policy=NOT_STORED, live_key=f"{url} {byte_range}",
            )  # fmt: skip
        if self.siblings is not None and not asked_origin:
            found = await self.siblings.once(url, headers)
            if found is not None:
                return found
        return await self._join.once(url, headers, lambda: self._origin.fetch(url, headers=headers))

    async def publish(self, key: str, source: Source, opener: Opener) -> FetchResult:
        """Content that is not an HTTP URL (a file in a torrent), under a cache ``key``:
        stored content is immutable and served as is; else it is read once through
        ``opener`` and chunked like an origin response."""
        stored = self._match(await self._entries.run(self._index.variants, key), key, {})
        if stored is not None:
            await self._entries.run(self._index.touch, stored.content_id, self._clock())
            return FetchResult(await self._entries.load(stored), CacheStatus.HIT)
        return await self._join.once(key, {}, opener, source, IMMUTABLE)

    async def _revalidate(
        self, stored: StoredContent, url: str, headers: dict[str, str]
    ) -> FetchResult | None:
        """The stored copy if the origin says it has not changed (or cannot be asked);
        None if the origin has a new response, which is then fetched whole."""
        conditional = {**headers, **http_cache.conditional_headers(stored.policy)}
        try:
            async with self._origin.fetch(url, headers=conditional) as resp:
                if resp.status != 304:
                    return None
                now = self._clock()
                refreshed = http_cache.policy(200, headers, resp.headers, now)
        except Refusal as exc:
            log.warning("revalidating %s failed, serving the stored copy: %s", url, exc)
            return FetchResult(await self._entries.load(stored), CacheStatus.STALE)
        await self._entries.run(self._index.touch, stored.content_id, now, refreshed.fresh_until)
        return FetchResult(await self._entries.load(stored), CacheStatus.REVALIDATED)

    @staticmethod
    def _match(
        variants: list[StoredContent], url: str, headers: Mapping[str, str]
    ) -> StoredContent | None:
        for stored in variants:
            if http_cache.cache_key(url, stored.policy.vary, headers) == stored.cache_key:
                return stored
        return None


def torrent_key(source: TorrentSource) -> str:
    """The cache key of a file in a torrent (the index's ``url`` column)."""
    return f"torrent:{source.infohash.hex()}/{source.path}"
