"""Serving a URL from a sibling edge's fresh copy instead of its origin (docs/edge.md,
Sibling caches).

Asked for a URL it does not hold, an edge with sibling caches on asks the edges that
announce the URL in the DHT (:mod:`cdn_edge.dht.siblings` finds and checks them) for
their fresh copy. A copy counts only with a head signed by the edge that fetched it
from the origin, for the same normalized URL, fresh by the HTTP caching rules of the
headers in that head, and with its seal. The edge then pulls the first chunk from that
sibling as an unpaid replica pull (:class:`~cdn_edge.content.replication.Replicator`:
free from a stranger, through its free allowance or free lane, paid only to a
``--tracker`` peer, since nobody has paid this edge yet) and checks it against the
signed statement; only then is the copy kept, under the
URL's cache key, as a replica: the sibling's head, statements and seal are served
as they are, and the other chunks are bought from the sibling when requesters ask.
Any failure (no sibling, no answer in time, a copy that does not verify) means the
origin is fetched as before. A copy whose later chunk cannot be had from its sibling
(a chunk that does not verify, a sibling gone) is dropped and its content id refused:
the requests for it hear of the failure, and the next fetch of the URL goes to the
origin. One attempt per URL and request headers runs at a time; requests arriving
meanwhile wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cdn_edge.content import http_cache
from cdn_edge.content.entries import Entries
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.fetch_join import CacheStatus, FetchFailed, FetchResult
from cdn_edge.content.replication import Replicator, StoreChunk
from requester.protocol import ManifestHead, ProviderRecord

log = logging.getLogger(__name__)

FIND_TIMEOUT = 3.0
"""Seconds for the DHT lookup and the siblings' answers together: a miss costs at most this."""
FIRST_CHUNK_TIMEOUT = 10.0
"""Seconds for the first chunk from a sibling before the origin is asked instead."""
REMEMBERED = 4096
"""Content ids of copies taken, and of copies refused, kept (the oldest go first)."""


@dataclass(frozen=True)
class SiblingOffer:
    """A sibling's fresh copy of a URL, already checked (head, URL, freshness, seal)."""

    provider: str
    """The sibling's base URL, where its chunks are bought."""
    head: ManifestHead
    head_bytes: bytes
    seal_bytes: bytes
    policy: http_cache.CachePolicy
    """The copy's caching rules, from the headers its head signs."""
    record: ProviderRecord | None
    """The sibling's signed provider record of the content, when it gave one."""


class Siblings(Protocol):
    def offers(self, url: str, headers: Mapping[str, str]) -> AsyncGenerator[SiblingOffer, None]:
        """Checked offers for ``url`` as siblings answer, the first to answer first."""
        ...


Verified = tuple[bytes, bytes, bytes]
"""(sha256, data, statement) of a chunk that verified."""


class _NotUsable(Exception):
    """The sibling did not deliver a first chunk that verifies."""


class SiblingFetch:
    def __init__(
        self, siblings: Siblings, replicator: Replicator, entries: Entries,
        store_chunk: StoreChunk, *, clock: Callable[[], float],
        on_new_content: Callable[[bytes], None], remember: Callable[[ProviderRecord], None],
    ) -> None:  # fmt: skip
        self._siblings = siblings
        self._replicator = replicator
        self._entries = entries
        self._store_chunk = store_chunk
        self._clock = clock
        self._on_new_content = on_new_content
        self._remember = remember
        self._live: dict[str, asyncio.Future[FetchResult | None]] = {}
        self._copied: OrderedDict[bytes, None] = OrderedDict()
        self._refused: OrderedDict[bytes, None] = OrderedDict()

    def copied(self, content_id: bytes) -> bool:
        """Whether ``content_id`` is a sibling's copy this edge took."""
        return content_id in self._copied

    async def drop(self, entry: ContentEntry, why: Exception) -> None:
        """A copy whose sibling failed a chunk: dropped, failed for the requests holding it,
        and refused from then on, so the next fetch of its URL asks the origin."""
        log.warning("dropping the sibling copy %s: %s", entry.content_id.hex(), why)
        self._copied.pop(entry.content_id, None)
        _remember(self._refused, entry.content_id)
        await self._entries.run(self._entries.index.drop, entry.content_id)
        entry.fail(FetchFailed(f"the sibling this edge copied the content from failed: {why}"))

    async def once(self, url: str, headers: dict[str, str]) -> FetchResult | None:
        """A sibling's copy of ``url`` kept as this edge's, or None: then ask the origin."""
        key = json.dumps([url, sorted(headers.items())])
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = asyncio.get_running_loop().create_future()
            try:
                live.set_result(await self._attempt(url, headers))
            except Exception as exc:  # a bug here must not cost the requester its answer
                log.exception("sibling fetch of %s failed", url)
                live.set_exception(exc)
            finally:
                del self._live[key]
                if not live.done():
                    live.cancel()  # this request was cancelled: the others ask the origin
        try:
            return await asyncio.shield(live)
        except asyncio.CancelledError:
            if live.cancelled():
                return None
            raise
        except Exception:
            return None

    async def _attempt(self, url: str, headers: dict[str, str]) -> FetchResult | None:
        offers = self._siblings.offers(url, headers)
        deadline = asyncio.get_running_loop().time() + FIND_TIMEOUT
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    offer = await anext(offers, None)
                if offer is None:
                    return None
                if offer.head.content_id in self._refused:
                    continue  # a copy that failed here before
                try:
                    verified = await self._first_chunk(offer)
                except _NotUsable:
                    continue  # the next sibling's copy, if one answered in time
                return await self._adopt(url, headers, offer, verified)
        except TimeoutError:
            log.info("no sibling answered for %s in time", url)
            return None
        finally:
            await offers.aclose()

    async def _first_chunk(self, offer: SiblingOffer) -> Verified | None:
        """The copy's first chunk, verified (None: the copy has no chunks); raises
        :class:`_NotUsable` if the sibling did not deliver one that verifies."""
        trial = ContentEntry(offer.head, offer.head_bytes, providers=(offer.provider,))
        trial.finish(offer.seal_bytes)
        if trial.past_end(0):
            return None
        got: list[Verified] = []

        async def keep(_entry: ContentEntry, _index: int, sha256: bytes, data: bytes,
                       statement: bytes) -> None:  # fmt: skip
            got.append((sha256, data, statement))

        try:
            async with asyncio.timeout(FIRST_CHUNK_TIMEOUT):
                await self._replicator.fetch_chunk(trial, 0, keep, unpaid=True)
        except Exception as exc:  # any failure: this sibling's copy is not used
            log.warning("sibling %s: its copy of %s failed: %s", offer.provider,
                        offer.head.content_id.hex(), exc)  # fmt: skip
            raise _NotUsable from exc
        if not got:  # another pull of the same chunk ran: this one saw no bytes
            raise _NotUsable
        return got[0]

    async def _adopt(self, url: str, headers: dict[str, str], offer: SiblingOffer,
                     verified: Verified | None) -> FetchResult:  # fmt: skip
        head = offer.head
        key = http_cache.cache_key(url, offer.policy.vary, headers)
        await self._entries.run(self._entries.index.add_content, head.content_id, url, key,
                                offer.head_bytes, offer.policy, self._clock())  # fmt: skip
        entry = ContentEntry(head, offer.head_bytes, providers=(offer.provider,))
        entry.finish(offer.seal_bytes)
        await self._entries.persist_seal(entry)
        entry = self._entries.keep(entry)
        if not entry.providers:
            entry.providers = (offer.provider,)
        if verified is not None and 0 not in entry.statements:
            await self._store_chunk(entry, 0, *verified)
        if offer.record is not None:
            self._remember(offer.record)
        _remember(self._copied, head.content_id)
        self._on_new_content(head.content_id)
        log.info("%s served from sibling %s", url, offer.provider)
        return FetchResult(entry, CacheStatus.SIBLING)


def _remember(ids: OrderedDict[bytes, None], content_id: bytes) -> None:
    ids[content_id] = None
    ids.move_to_end(content_id)
    while len(ids) > REMEMBERED:
        ids.popitem(last=False)
