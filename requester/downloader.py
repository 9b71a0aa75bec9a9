"""Downloading one content from many providers at once, delivered in order.

Each provider gets a few workers. A worker takes the lowest chunk index in
the delivery window that is neither held nor being fetched; near the end, an
idle worker re-requests a chunk that has been in flight elsewhere for long,
and the first verified copy wins. Bytes are delivered strictly in order and
the window bounds memory to ``window`` chunks. A provider that lies (bad
chunk, bad price) or fails is dropped for this download, with the evidence
kept, and its chunk goes back to the queue; one that served it and then refuses or
resets connections (a restart) is asked again with backoff
(:mod:`requester.provider_backoff`). Providers found while the download
runs (tracker answers) join it with workers of their own: one while they are
on probation (see :mod:`requester.provider_trust`), all once a chunk verifies.
A worker of a provider scored slower than the best starts its pick further into
the window (:mod:`requester.provider_choice`). With a download's market
(:mod:`requester.bidding`), each provider's ``/v1/info`` is read once it has
delivered a chunk, and the chunk client pays for slots or uses free lanes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from requester.bidding import Bidding
from requester.chunk_client import (
    ChunkClient,
    ChunkUnavailable,
    ContentFailed,
    Delivered,
    PaymentRefused,
    ProviderFault,
    ProviderUnreachable,
)
from requester.download_progress import Progress, ProviderStats
from requester.errors import ORIGIN_TITLES, SdkError
from requester.protocol import DEFAULT_CHUNK_SIZE, UNKNOWN_SIZE, ContentVerifier
from requester.protocol.chunk_run import RunEnd
from requester.provider_backoff import ProviderBackoff
from requester.provider_choice import ProviderChoice
from requester.provider_trust import ProviderTrust

STALL_TIMEOUT = 60.0
"""Seconds without a delivered chunk after which the download gives up."""
RETRY_AFTER = 0.5
"""Seconds before asking a provider again for a chunk it said it does not have yet."""
STRAGGLER_AFTER = 2.0
"""Seconds in flight after which an idle worker may race a chunk near the end."""
RUN_PAUSE = 2.0
"""Seconds a provider is asked chunk by chunk after a run of it brought no chunk."""


class NoProvidersLeft(SdkError):
    """Every provider failed or was dropped before the download completed."""

    status = 504
    code = "no_providers"
    title = "No provider could deliver this page"


class PaymentNeeded(NoProvidersLeft):
    """Every provider left serves nothing more unpaid (edges without a market, past their
    free allowance), and this download cannot pay: no wallet, ``--max-price 0``, or a
    wallet too poor to open a channel (none was opened)."""

    status = 402
    code = "payment_needed"
    title = "The providers want payment, and this wallet cannot pay"


class ContentFailedAtOrigin(NoProvidersLeft):
    """The edge the content was asked from (the first provider: it signed the head and
    seals it) says its fetch failed: no chunk past the failure exists anywhere."""

    status = 502
    code = "content_failed"
    title = "The site's response failed at the Atlas edge"

    def __init__(self, failed: ContentFailed) -> None:
        super().__init__(f"{failed.provider}: {failed.reason}")
        self.edge = failed.provider
        self.status = failed.status if 500 <= failed.status < 600 else 502
        if re.fullmatch(r"[a-z0-9_]{1,60}", failed.code):
            self.code = failed.code
        self.detail = failed.detail
        """The edge's problem, as it said it (``502 origin_truncated``, its detail)."""
        self.title = ORIGIN_TITLES.get(self.code, self.title)
        self.message = f"{self.detail or self.code}; reported by the Atlas edge {self.edge}"


class ChunkScheduler:
    """Runs the workers for one content and yields its bytes in order.

    A provider that answers that the content failed is dropped like any failing one; when
    the first provider (the origin edge) says so, the download fails at once with that
    cause, instead of waiting for chunks that cannot come.
    """

    def __init__(
        self,
        verifier: ContentVerifier,
        providers: list[str],
        client: ChunkClient,
        *,
        window: int = 32,
        per_provider: int = 2,
        start_index: int = 0,
        stall_timeout: float = STALL_TIMEOUT,
        trust: ProviderTrust | None = None,
        market: Bidding | None = None,
    ) -> None:
        self.verifier = verifier
        self.trust = trust
        self.market = market
        """Where to pay for slots and what to bid; without it, every provider is paid when
        it asks (402), as before the market."""
        self.choice = market.choice if market is not None else ProviderChoice()
        """Which providers are known; without it, every provider is paid as a known one."""
        self._stall_timeout = stall_timeout
        self._last_progress = time.monotonic()
        self._client = client
        self._signed_before = dict(client.signed)
        self._window = max(4, window * DEFAULT_CHUNK_SIZE // verifier.head.chunk_size)
        """Chunks ahead of delivery held or fetched at most: ``window`` chunks of 256 KiB's
        worth of bytes (8 MiB by default), so larger chunks mean fewer, not more memory."""
        self._per_provider = per_provider
        self.start_index = start_index
        self._next = start_index
        self._ready: dict[int, bytes] = {}
        self._inflight: dict[int, float] = {}
        self._end: int | None = None
        self._changed = asyncio.Event()
        self._failure: Exception | None = None
        self._last_unavailable = ""
        self.progress = Progress(providers={p: ProviderStats() for p in providers})
        self._origin_edge = providers[0] if providers else None
        self.discovering = False
        """More providers may still come (see :meth:`add_provider`): not all gone yet."""
        self.backoff = ProviderBackoff()
        """Providers whose connection was refused or reset: asked again later, not dropped."""
        self._group: asyncio.TaskGroup | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._runs_paused: dict[str, float] = {}
        """Until when each provider is asked chunk by chunk: a run of it brought nothing (a
        replica that must buy what it lacks; a content not there yet)."""
        seal = verifier.seal
        if seal is not None:
            self._end = seal.chunk_count

    def add_provider(self, provider: str) -> None:
        """A provider found after the download was set up; its workers join at once."""
        if provider in self.progress.providers:
            return
        self.progress.providers[provider] = ProviderStats()
        if self._group is not None:
            self._spawn(provider, self._first_workers(provider))
        self._notify()

    def discovery_done(self) -> None:
        self.discovering = False
        self._notify()

    def start_at(self, index: int) -> None:
        """Deliver from chunk ``index`` instead (a Range request); only before ``chunks``."""
        if self.progress.delivered_bytes or self._ready or self._inflight:
            raise RuntimeError("the download has already started")
        self.start_index = self._next = index

    async def chunks(self) -> AsyncIterator[bytes]:
        """Verified chunks in order, from ``start_index`` to the end."""
        failure: Exception | None = None
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._workers = []
            for provider in list(self.progress.providers):
                self._spawn(provider, self._first_workers(provider))
            try:
                while self._end is None or self._next < self._end:
                    if self._next in self._ready:
                        data = self._ready.pop(self._next)
                        self._next += 1
                        self.progress.delivered_bytes += len(data)
                        self._last_progress = time.monotonic()
                        if self.market is not None:
                            self.market.delivered(len(data), self._last_progress)
                        self._notify()
                        yield data
                        continue
                    failure = self._why_stopped()
                    if failure is not None:
                        break  # raised outside the TaskGroup, which would wrap it in a group
                    await self._wait()
            finally:
                self._group = None
                for worker in self._workers:
                    worker.cancel()
                self._sync_paid()
                self._note_unreachable()
        if failure is not None:
            raise failure

    def _why_stopped(self) -> Exception | None:
        if self._failure is not None:
            return self._failure
        if all(w.done() for w in self._workers) and not self.discovering:
            stats = self.progress.providers.values()
            if any(s.wants_payment for s in stats) and all(s.dropped for s in stats):
                return PaymentNeeded(
                    "the providers want payment, and this wallet cannot pay: "
                    + self._why_no_providers().removeprefix("no provider could serve it: ")
                )
            return NoProvidersLeft(self._why_no_providers())
        if time.monotonic() - self._last_progress > self._stall_timeout:
            return NoProvidersLeft(
                f"no chunk arrived for {self._stall_timeout:.0f} s; " + self._why_no_providers()
            )
        return None

    async def _worker(self, provider: str) -> None:
        stats = self.progress.providers[provider]
        skip: dict[int, float] = {}
        alone: set[int] = set()
        """Chunks to ask this provider for one by one: its run stopped before them."""
        while stats.dropped is None:
            index = self._pick(skip, provider)
            if index is None:
                if self._end is not None and self._next >= self._end:
                    return
                await self._wait()
                continue
            pause = self.backoff.wait(provider, time.monotonic())
            if pause:
                await asyncio.sleep(pause)
                continue
            probation = self.trust is not None and self.trust.on_probation(provider)
            now = time.monotonic()
            stats.first_asked = now if stats.first_asked is None else stats.first_asked
            count = 1 if index in alone else self._run_length(provider, index, probation)
            alone.discard(index)
            if count > 1:
                indexes = self._claim(index, count, skip)
                straggler = self._straggler()
                if len(indexes) < count // 2 and index != self._next and straggler is None:
                    await self._wait()  # a short stretch now is a longer one soon
                    continue
                if len(indexes) < count // 2 and straggler is not None:
                    going_on = await self._one(provider, stats, straggler, skip, probation)
                else:
                    going_on = await self._run(provider, stats, indexes, alone)
            else:
                going_on = await self._one(provider, stats, index, skip, probation)
            if not going_on:
                return

    async def _one(self, provider: str, stats: ProviderStats, index: int,
                   skip: dict[int, float], probation: bool) -> bool:  # fmt: skip
        """Fetch chunk ``index`` alone; whether this worker goes on."""
        self._inflight.setdefault(index, time.monotonic())
        self.choice.asked(provider, time.monotonic())
        stats.requests += 1
        try:
            delivered = await self._client.get(provider, self.verifier, index, self.trust,
                                               self.market)  # fmt: skip
        except ProviderUnreachable as exc:  # before ProviderFault: it is one that may pass
            self._unreachable(provider, stats, exc)
            self._release(index)
            return True
        except ProviderFault as exc:
            self._fault(provider, stats, exc)
            self._release(index)
            return False
        except ChunkUnavailable as exc:
            self.choice.failed(provider)
            self._release(index)
            self._last_unavailable = f"{provider}: {exc}"[:300]
            if exc.status == 416:
                self._end = index if self._end is None else min(self._end, index)
            else:  # not ready here yet: others take it; ask this provider again later
                skip[index] = time.monotonic() + RETRY_AFTER
                await asyncio.sleep(0.02)
            return True
        except Exception as exc:  # spend limit, ledger refusal: the download stops
            self._failure = exc
            self._release(index)
            return False
        self.backoff.succeeded(provider)
        self._take(index, delivered, stats)
        self.choice.delivered(provider, delivered.wire_bytes, delivered.seconds,
                              delivered.price, time.monotonic())  # fmt: skip
        if stats.chunks == 1 and self.market is not None and self._sizable():
            self._learn(provider)
        if probation:  # its first chunk verified: it gets the workers others have
            self._spawn(provider, self._per_provider - 1)
        return True

    async def _run(self, provider: str, stats: ProviderStats, indexes: list[int],
                   alone: set[int]) -> bool:  # fmt: skip
        """Fetch the run of chunks ``indexes`` (consecutive; see :mod:`requester.chunk_runs`);
        whether this worker goes on. A run that stops before its first chunk sends that chunk
        to :meth:`ChunkClient.get`, whose answer says why (a quote, a replica that must buy
        it, a chunk not ready, a failed content)."""
        first = indexes[0]
        started = time.monotonic()
        for index in indexes:
            self._inflight.setdefault(index, started)
        self.choice.asked(provider, started)
        stats.requests += 1
        got: list[int] = []
        last = started

        def deliver(index: int, delivered: Delivered) -> None:
            nonlocal last
            now = time.monotonic()
            delivered, last = replace(delivered, seconds=now - last), now
            got.append(index)
            self._take(index, delivered, stats)
            self.choice.delivered(provider, delivered.wire_bytes, delivered.seconds,
                                  delivered.price, now)  # fmt: skip

        try:
            reason = await self._client.get_run(provider, self.verifier, first, len(indexes),
                                                deliver, self.trust, self.market)  # fmt: skip
        except ProviderUnreachable as exc:
            self._unreachable(provider, stats, exc)
            return True
        except ProviderFault as exc:
            self._fault(provider, stats, exc)
            return False
        except Exception as exc:  # spend limit, ledger refusal: the download stops
            self._failure = exc
            return False
        finally:
            for index in set(indexes).difference(got):
                self._release(index)
        if got:
            self.backoff.succeeded(provider)
        if reason is None or not got:
            alone.add(first + len(got))
            self._runs_paused[provider] = time.monotonic() + RUN_PAUSE
        elif reason == RunEnd.END:
            end = first + len(got)
            self._end = end if self._end is None else min(self._end, end)
        return True

    def _run_length(self, provider: str, index: int, probation: bool) -> int:
        """How many chunks to ask ``provider`` for at once from ``index``: 1 where runs are
        not served or a provider is on probation or sells slots, a straggler raced, else the
        window shared among the providers, shrinking near the end so no one long run holds it."""
        most = self._client.run_max(provider)
        market = self.market
        paused = self._runs_paused.get(provider, 0.0) > time.monotonic()
        if most < 2 or probation or paused or index in self._inflight or (
                market is not None and market.auction(provider)):  # fmt: skip
            return 1
        providers = max(1, sum(1 for s in self.progress.providers.values() if s.dropped is None))
        share = self._window // providers  # a worker finding no room in the window waits
        end = self._expected_end()
        if end is not None:
            share = min(share, (end - self._next) // (2 * providers))
        return max(1, min(most, share))

    def _straggler(self) -> int | None:
        """The lowest chunk in flight for longer than :data:`STRAGGLER_AFTER`, to race."""
        now = time.monotonic()
        late = [i for i, t in self._inflight.items() if now - t > STRAGGLER_AFTER]
        return min(late) if late else None

    def _expected_end(self) -> int | None:
        """The chunk count: sealed, or from the size the origin edge signed in the head (the
        seal usually comes last). Runs stop there: a run past it would be paid for chunks
        that do not exist (an edge understating the size only shortens runs)."""
        if self._end is not None:
            return self._end
        head = self.verifier.head
        return None if head.size_hint == UNKNOWN_SIZE else -(-head.size_hint // head.chunk_size)

    def _claim(self, first: int, count: int, skip: dict[int, float]) -> list[int]:
        """``first`` and the chunks after it nobody holds or fetches, up to ``count`` and the
        window's end."""
        limit = self._next + self._window
        end = self._expected_end()
        if end is not None:
            limit = min(limit, end)
        indexes = [first]
        for index in range(first + 1, min(first + count, limit)):
            if index in self._ready or index in self._inflight or index in skip:
                break
            indexes.append(index)
        return indexes

    def _fault(self, provider: str, stats: ProviderStats, exc: ProviderFault) -> None:
        self.choice.failed(provider)
        if stats.dropped is None:  # the first fault is the reason and the evidence: a
            # sibling worker's later "dropped earlier in this download" must not hide it
            stats.dropped, stats.evidence = exc.reason, exc.evidence
            stats.wants_payment = isinstance(exc, PaymentRefused)
        if isinstance(exc, ContentFailed) and provider == self._origin_edge:
            self._failure = ContentFailedAtOrigin(exc)

    def _unreachable(self, provider: str, stats: ProviderStats, exc: ProviderUnreachable) -> None:
        """Back off from a refused or reset connection; drop the provider only when it never
        served this download (a dead address: no 30 s wait) or stays unreachable too long."""
        self.choice.failed(provider)
        now = time.monotonic()
        again = self.backoff.failed(provider, now, exc.reason) and stats.chunks > 0
        if not again and stats.dropped is None:
            stats.dropped = self.backoff.describe(provider, now)
            if self.trust is not None:
                self.trust.drop(provider)

    def _note_unreachable(self) -> None:
        """Providers still unreachable as the download ends are reported dropped."""
        now = time.monotonic()
        for provider in self.backoff.failing():
            stats = self.progress.providers.get(provider)
            if stats is not None and stats.dropped is None:
                stats.dropped = self.backoff.describe(provider, now)

    def _first_workers(self, provider: str) -> int:
        """One worker for a provider on probation: one chunk in flight, one paid at a time."""
        if self.trust is not None and self.trust.on_probation(provider):
            return 1
        return self._per_provider

    def _sizable(self) -> bool:
        """More chunks left than the providers fetch at once: worth a look at their markets
        (a page asset of a chunk or two is done before the answer would come)."""
        left = None if self._end is None else self._end - self._next
        return left is None or left > self._per_provider * len(self.progress.providers)

    def _learn(self, provider: str) -> None:
        """Read the provider's market (its ``/v1/info``) beside the chunks."""
        if self._group is not None:
            self._workers.append(self._group.create_task(self._read_market(provider)))

    async def _read_market(self, provider: str) -> None:
        """A market edge queues requests for its lanes: a paying download keeps more in
        flight there, so its paid slot and its free share are both kept busy."""
        market = await self._client.market(provider)
        if self.market is not None:
            self.market.learn(provider, market)
            if self.market.wants_paid(provider, time.monotonic()):
                self._spawn(provider, self._per_provider)

    def _spawn(self, provider: str, count: int) -> None:
        if self._group is not None:
            self._workers += [self._group.create_task(self._worker(provider)) for _ in range(count)]

    def _pick(self, skip: dict[int, float], provider: str) -> int | None:
        """The next-needed chunk nobody holds or fetches, minus those this provider lacked;
        a provider slower than the best looks from further into the window first."""
        now = time.monotonic()
        for index in [i for i, until in skip.items() if until <= now or i < self._next]:
            del skip[index]
        limit = self._next + self._window
        if self._end is not None:
            limit = min(limit, self._end)
        lag = self.choice.lag(provider, self.verifier.head.chunk_size, self._window)
        for start, stop in ((self._next + lag, limit), (self._next, self._next + lag)):
            for index in range(start, min(stop, limit)):
                if index not in self._ready and index not in self._inflight and index not in skip:
                    return index
        return self._straggler()

    def _take(self, index: int, delivered: Delivered, stats: ProviderStats) -> None:
        stats.chunks += 1
        stats.bytes += delivered.wire_bytes
        stats.last_delivered = time.monotonic()
        if delivered.lane == "paid":
            stats.paid_bytes += delivered.wire_bytes
            stats.charged += delivered.price
        else:
            stats.free_bytes += delivered.wire_bytes
        self._sync_paid()
        self._inflight.pop(index, None)
        if index >= self._next and index not in self._ready:
            self._ready[index] = delivered.data
        seal = self.verifier.seal
        if seal is not None:
            self._end = seal.chunk_count
        self._notify()

    def _sync_paid(self) -> None:
        """What each provider was paid in this download: vouchers signed, delivered or not."""
        for provider, stats in self.progress.providers.items():
            signed = self._client.signed.get(provider, 0)
            stats.paid = signed - self._signed_before.get(provider, 0)

    def _release(self, index: int) -> None:
        self._inflight.pop(index, None)
        self._notify()

    def _why_no_providers(self) -> str:
        reasons = [f"{p}: {s.dropped}" for p, s in self.progress.providers.items() if s.dropped]
        if self._last_unavailable:
            reasons.append(f"last answer: {self._last_unavailable}")
        return "no provider could serve it: " + ("; ".join(reasons) or "none answered")

    async def _wait(self) -> None:
        event = self._changed
        try:
            async with asyncio.timeout(0.5):
                await event.wait()
        except TimeoutError:
            pass

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()
