"""Serving content another edge fetched: find it, then pull chunks on demand.

When asked for content it does not hold, an edge looks the content id up on
its trackers, takes the signed head from a provider, and from then on
fetches each missing chunk from a provider the first time it is asked for,
paying as any requester would and checking it against the origin edge's
statement before storing and serving it. It then provides the content too.
Providers other than the edge's trackers are tried last and on probation, within
per-content and edge-wide limits on what they can lock up (:mod:`cdn_edge.content.replica_trust`).
A pull nobody paid for (a market edge's free lane) pays only its configured peers: any
other provider is asked only for its free lane, and is never paid (issue 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.replica_trust import ReplicaTrust
from cdn_edge.tracker import Tracker
from requester.bidding import Bidding
from requester.chunk_client import (
    ChunkClient,
    ChunkUnavailable,
    ContentFailed,
    Delivered,
    PaymentRefused,
    ProviderFault,
)
from requester.errors import ServiceRefusal
from requester.ledger_client import LedgerError
from requester.protocol import (
    ContentVerifier,
    MalformedMessage,
    ManifestHead,
    NodeId,
    ProtocolError,
    ProviderRecord,
    b64url_decode,
)
from requester.protocol.manifest import MAX_HEAD_BYTES, SEAL_SIZE
from requester.protocol.provider_record import MAX_RECORD_BYTES

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
StoreChunk = Callable[[ContentEntry, int, bytes, bytes, bytes], Awaitable[None]]
"""(entry, index, sha256, data, statement): keep a verified chunk."""
UNPAID = "nobody paid for this pull: a provider the edge did not configure gets nothing"


class SoldOnly(ServiceRefusal):
    """An unpaid pull found the chunk only with providers that sell it and that this edge
    does not pay for a request nobody paid for (the free lane answers it 503, never 402)."""

    status = 503
    code = "chunk_not_ready"

    def __init__(self, index: int) -> None:
        self.detail = (
            f"chunk {index} is to be had here only by paying for it: the providers that "
            "hold it sell it, and this edge buys from a provider it did not configure only "
            "for a request that paid first"
        )
        super().__init__(self.detail)


class Replicator:
    def __init__(
        self,
        self_id: NodeId,
        trackers: tuple[str, ...],
        own_tracker: Tracker,
        session: aiohttp.ClientSession,
        chunks: ChunkClient,
        trust: ReplicaTrust,
    ) -> None:
        self._self_id = self_id
        self._trust = trust
        self._trackers = trackers
        self._own = own_tracker
        self._session = session
        self._chunks = chunks
        self._inflight: dict[tuple[bytes, int], tuple[asyncio.Future[None], bool]] = {}
        """Fetches running, and whether each pays only configured peers."""

    def leave_credit(self) -> None:
        """Keep what providers hold paid ahead in the edge's payer store, for after a restart."""
        self._chunks.leave_credit()

    async def find(self, content_id: bytes) -> ContentEntry | None:
        """A replica entry for ``content_id`` (head from a provider), or None if nobody has it."""
        providers = await self.providers(content_id)
        for url in providers:
            try:
                info = await self._content_info(url, content_id)
            except (aiohttp.ClientError, TimeoutError, ValueError, ProtocolError) as exc:
                log.info("provider %s has no usable head for %s: %s", url, content_id.hex(), exc)
                continue
            if info is not None:
                head_bytes, seal = info
                entry = ContentEntry(ManifestHead.decode(head_bytes), head_bytes,
                                     providers=tuple(providers))  # fmt: skip
                if seal is not None:
                    entry.finish(seal)
                return entry
        return None

    async def providers(self, content_id: bytes) -> list[str]:
        """Provider URLs from our own tracker and the configured ones, never ourselves; the
        configured trackers first (a tracker may list any number of fakes before them)."""
        now = int(time.time())
        records = list(self._own.providers(content_id, now))
        for tracker in self._trackers:
            try:
                async with self._session.get(
                    f"{tracker.rstrip('/')}/v1/providers/{content_id.hex()}", timeout=LOOKUP_TIMEOUT
                ) as resp:
                    if resp.status != 200:
                        continue
                    answer = await resp.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("tracker %s lookup failed: %s", tracker, exc)
                continue
            listed = answer.get("providers") if isinstance(answer, dict) else None
            for item in listed[:64] if isinstance(listed, list) else []:
                try:
                    raw = b64url_decode(str(item.get("record", "")), MAX_RECORD_BYTES, "record")
                    records.append(ProviderRecord.decode(raw))
                except (ProtocolError, AttributeError):
                    continue
        urls: list[str] = []
        for record in records:
            if (record.content_id == content_id and record.expires_at > now
                    and record.node_id != self._self_id and record.url not in urls):  # fmt: skip
                urls.append(record.url)
        return self._trust.ranked(urls)

    async def fetch_chunk(self, entry: ContentEntry, index: int, store: StoreChunk, *,
                          ahead: bool = False, unpaid: bool = False) -> None:  # fmt: skip
        """Make chunk ``index`` of a replica available, fetching it once however many ask
        (a caller may have paid and waited while another fetch stored it: not bought twice).

        A read-``ahead`` fetch, which no requester has paid for, buys only from the edge's
        configured peers: from anyone else it would let a provider that sells one chunk to
        a paying requester sell the edge the next few unasked. An ``unpaid`` fetch (for a
        market edge's free lane) also pays only those peers, and takes the chunk from any
        other provider only through its free lane (:class:`SoldOnly` if none gives it).
        A paid fetch that finds such a restricted one running waits for it, then does its
        own if that one failed.
        """
        if ahead and not any(self._trust.known(url) for url in entry.providers):
            return
        key = (entry.content_id, index)
        while index not in entry.statements:
            running = self._inflight.get(key)
            if running is None:
                await self._run(key, entry, index, store, ahead, unpaid)
                return
            future, restricted = running
            if not restricted or ahead or unpaid:
                await asyncio.shield(future)
                return
            with contextlib.suppress(Exception):  # it could not: this one may pay anyone
                await asyncio.shield(future)
                return

    async def _run(self, key: tuple[bytes, int], entry: ContentEntry, index: int,
                   store: StoreChunk, ahead: bool, unpaid: bool) -> None:  # fmt: skip
        running = asyncio.get_running_loop().create_future()
        running.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved"
        self._inflight[key] = (running, ahead or unpaid)
        try:
            await self._fetch(entry, index, store, ahead, unpaid)
            running.set_result(None)
        except Exception as exc:
            running.set_exception(exc)
            raise
        finally:
            del self._inflight[key]

    async def _fetch(self, entry: ContentEntry, index: int, store: StoreChunk,
                     ahead: bool, unpaid: bool) -> None:  # fmt: skip
        verifier = ContentVerifier(entry.head)
        if entry.seal_bytes is not None:
            verifier.accept_seal(entry.seal_bytes)
        last: Exception | None = None
        sold = False
        failed_everywhere = True
        for url in self._trust.ranked(entry.providers):
            if ahead and not self._trust.known(url):
                break  # ranked: the configured peers come first
            free = unpaid and not self._trust.known(url)  # its free lane, or nothing
            try:
                delivered = await self._get(url, verifier, index, free)
            except PaymentRefused as exc:
                last, sold, failed_everywhere = exc, sold or free, False
                continue
            except (ProviderFault, ChunkUnavailable) as exc:
                last = exc
                failed_everywhere &= isinstance(exc, ContentFailed)
                continue
            except (ProtocolError, LedgerError) as exc:  # could not pay: no funds, ledger down
                log.warning("cannot pay %s for chunk %d: %s", url, index, exc)
                last = exc
                continue
            await store(entry, index, delivered.sha256, delivered.data, delivered.statement)
            if entry.seal_bytes is None:
                await self._learn_seal(url, entry)
            return
        if isinstance(last, ContentFailed) and failed_everywhere:
            raise last
        if sold:
            raise SoldOnly(index)
        if isinstance(last, ChunkUnavailable):
            raise last
        raise ChunkUnavailable(502, f"no provider could serve chunk {index}: {last}")

    async def _learn_seal(self, url: str, entry: ContentEntry) -> None:
        """Finish ``entry`` with the seal ``url`` has for it, if it has one yet."""
        try:
            info = await self._content_info(url, entry.content_id)
        except (aiohttp.ClientError, TimeoutError, ValueError, ProtocolError) as exc:
            log.info("no seal from %s yet: %s", url, exc)
            return
        if info is not None and info[1] is not None:
            entry.finish(info[1])

    async def _get(self, url: str, verifier: ContentVerifier, index: int,
                   free: bool = False) -> Delivered:  # fmt: skip
        """A chunk from a configured peer as before; from any other provider on this
        content's probation, one provider on probation at a time; ``free``: through the
        provider's free lane only, never paid (a 402 is :class:`PaymentRefused`)."""
        if free:  # no payment, so no probation: a refusal must not drop it for paid pulls
            return await self._chunks.get(url, verifier, index, None, Bidding(free_only=UNPAID))
        if self._trust.known(url):
            return await self._chunks.get(url, verifier, index)
        content = self._trust.content(verifier.head.content_id)
        if not content.trust.on_probation(url):
            return await self._chunks.get(url, verifier, index, content.trust)
        async with content.probation:
            return await self._chunks.get(url, verifier, index, content.trust)

    async def _content_info(self, url: str, content_id: bytes) -> tuple[bytes, bytes | None] | None:
        async with self._session.get(
            f"{url.rstrip('/')}/v1/content/{content_id.hex()}", timeout=LOOKUP_TIMEOUT
        ) as resp:
            if resp.status != 200:
                return None
            info = await resp.json()
        if not isinstance(info, dict):
            raise MalformedMessage(f"{url} described the content with a non-object")
        head_bytes = b64url_decode(str(info.get("head", "")), MAX_HEAD_BYTES, "head")
        head = ManifestHead.decode(head_bytes)
        if head.content_id != content_id:
            raise ProtocolError(f"{url} answered with a head for other content")
        seal = info.get("seal")
        seal_bytes = b64url_decode(str(seal), SEAL_SIZE, "seal") if seal else None
        if seal_bytes is not None:
            head.verify_seal(seal_bytes)
        return head_bytes, seal_bytes
