"""Downloading one content from many providers at once, delivered in order.

Each provider gets a few workers. A worker takes the lowest chunk index in
the delivery window that is neither held nor being fetched; near the end, an
idle worker re-requests a chunk held up at another provider that has gone
silent, and the first verified copy wins. Bytes are delivered strictly in order and
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

Which chunks are held, in flight and next is :mod:`requester.download_window`; what each
provider served, was paid and why it left, :mod:`requester.download_providers`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from requester.bidding import Bidding
from requester.chunk_client import (
    ChunkClient,
    ChunkUnavailable,
    ContentFailed,
    Delivered,
    ProviderFault,
    ProviderUnreachable,
)
from requester.download_failures import ContentFailedAtOrigin, NoProvidersLeft, PaymentNeeded
from requester.download_progress import ProviderStats
from requester.download_providers import ProviderBook
from requester.download_window import DownloadWindow
from requester.protocol import ContentVerifier
from requester.protocol.chunk_run import RunEnd
from requester.provider_trust import ProviderTrust

STALL_TIMEOUT = 60.0
"""Seconds without a delivered chunk after which the download gives up."""
RETRY_AFTER = 0.5
"""Seconds before asking a provider again for a chunk it said it does not have yet."""
RUN_PAUSE = 2.0
"""Seconds a provider is asked chunk by chunk after a run of it brought no chunk."""


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
        self.book = ProviderBook(providers, client, trust, market)
        self.progress = self.book.progress
        self.choice = self.book.choice
        self.backoff = self.book.backoff
        self._stall_timeout = stall_timeout
        self._last_progress = time.monotonic()
        self._client = client
        self.window = DownloadWindow(verifier, window, start_index)
        self._per_provider = per_provider
        self.start_index = start_index
        self._changed = asyncio.Event()
        self._failure: Exception | None = None
        self.discovering = False
        """More providers may still come (see :meth:`add_provider`): not all gone yet."""
        self._group: asyncio.TaskGroup | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._runs_paused: dict[str, float] = {}
        """Until when each provider is asked chunk by chunk: a run of it brought nothing (a
        replica that must buy what it lacks; a content not there yet)."""

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
        window = self.window
        if self.progress.delivered_bytes or window.ready or window.inflight:
            raise RuntimeError("the download has already started")
        self.start_index = window.next = index

    async def chunks(self) -> AsyncIterator[bytes]:
        """Verified chunks in order, from ``start_index`` to the end."""
        failure: Exception | None = None
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._workers = []
            for provider in list(self.progress.providers):
                self._spawn(provider, self._first_workers(provider))
            try:
                while not self.window.done:
                    data = self.window.pop_next()
                    if data is not None:
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
                self.book.sync_paid()
                self.book.note_unreachable()
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
                    + self.book.why_no_providers().removeprefix("no provider could serve it: ")
                )
            return NoProvidersLeft(self.book.why_no_providers())
        if time.monotonic() - self._last_progress > self._stall_timeout:
            return NoProvidersLeft(
                f"no chunk arrived for {self._stall_timeout:.0f} s; " + self.book.why_no_providers()
            )
        return None

    async def _worker(self, provider: str) -> None:
        stats = self.progress.providers[provider]
        skip: dict[int, float] = {}
        alone: set[int] = set()
        """Chunks to ask this provider for one by one: its run stopped before them."""
        while stats.dropped is None:
            probation = self.trust is not None and self.trust.on_probation(provider)
            runs = self._runs(provider, probation)
            index = self._pick(skip, provider, runs)
            if index is None:
                if self.window.done:
                    return
                await self._wait()
                continue
            pause = self.backoff.wait(provider, time.monotonic())
            if pause:
                await asyncio.sleep(pause)
                continue
            count = 1 if index in alone or not runs else self._run_length(provider, index)
            if count == 1 and not self.window.fits(index):
                await self._wait()  # a lone chunk is held once it comes: only in the window
                continue
            now = time.monotonic()
            stats.first_asked = now if stats.first_asked is None else stats.first_asked
            alone.discard(index)
            if count > 1:
                indexes = self.window.claim(index, count, skip)
                straggler = self.window.straggler(time.monotonic(), provider)
                if len(indexes) < count // 2 and index != self.window.next and straggler is None:
                    await self._wait()  # a short stretch now is a longer one soon
                    continue
                if (len(indexes) < count // 2 and straggler is not None
                        and self.window.fits(straggler)):  # fmt: skip
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
        self.window.asked(provider, [index], time.monotonic())
        self.choice.asked(provider, time.monotonic())
        stats.requests += 1
        try:
            delivered = await self._client.get(provider, self.verifier, index, self.trust,
                                               self.market)  # fmt: skip
        except ProviderUnreachable as exc:  # before ProviderFault: it is one that may pass
            self.book.unreachable(provider, exc)
            self._release(index, provider)
            return True
        except ProviderFault as exc:
            self._fault(provider, exc)
            self._release(index, provider)
            return False
        except ChunkUnavailable as exc:
            self.choice.failed(provider)
            self._release(index, provider)
            self.book.last_unavailable = f"{provider}: {exc}"[:300]
            if exc.status == 416:
                self.window.ends_at(index)
            else:  # not ready here yet: others take it; ask this provider again later
                skip[index] = time.monotonic() + RETRY_AFTER
                await asyncio.sleep(0.02)
            return True
        except Exception as exc:  # spend limit, ledger refusal: the download stops
            self._failure = exc
            self._release(index, provider)
            return False
        self.backoff.succeeded(provider)
        self._take(provider, index, delivered)
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
        self.window.asked(provider, indexes, started)
        self.choice.asked(provider, started)
        stats.requests += 1
        got: list[int] = []
        last = started

        def deliver(index: int, delivered: Delivered) -> None:
            nonlocal last
            now = time.monotonic()
            delivered, last = replace(delivered, seconds=now - last), now
            got.append(index)
            self._take(provider, index, delivered)
            self.choice.delivered(provider, delivered.wire_bytes, delivered.seconds,
                                  delivered.price, now)  # fmt: skip

        try:
            reason = await self._client.get_run(provider, self.verifier, first, len(indexes),
                                                deliver, self.trust, self.market,
                                                _RunRoom(self, provider))  # fmt: skip
        except ProviderUnreachable as exc:
            self.book.unreachable(provider, exc)
            return True
        except ProviderFault as exc:
            self._fault(provider, exc)
            return False
        except Exception as exc:  # spend limit, ledger refusal: the download stops
            self._failure = exc
            return False
        finally:
            for index in set(indexes).difference(got):
                self._release(index, provider)
        if got:
            self.backoff.succeeded(provider)
        if reason is None or not got:
            alone.add(first + len(got))
            self._runs_paused[provider] = time.monotonic() + RUN_PAUSE
        elif reason == RunEnd.END:
            self.window.ends_at(first + len(got))
        return True

    def _runs(self, provider: str, probation: bool) -> bool:
        """Whether ``provider`` is asked for runs: it serves them, is past probation, sells no
        slots (a market's lanes pace chunk by chunk), and its last run brought something."""
        market = self.market
        return not (self._client.run_max(provider) < 2 or probation
                    or self._runs_paused.get(provider, 0.0) > time.monotonic()
                    or (market is not None and market.auction(provider)))  # fmt: skip

    def _run_length(self, provider: str, index: int) -> int:
        """How many chunks to ask ``provider`` (one that serves runs) for at once from
        ``index``: 1 for a straggler raced, else the reach shared among the providers,
        shrinking near the end so no one long run holds it."""
        if index in self.window.inflight:
            return 1
        share = self.window.run_share(self.book.live())
        return max(1, min(self._client.run_max(provider), share))

    def _fault(self, provider: str, exc: ProviderFault) -> None:
        if self.book.fault(provider, exc) and isinstance(exc, ContentFailed):
            self._failure = ContentFailedAtOrigin(exc)

    def _first_workers(self, provider: str) -> int:
        """One worker for a provider on probation: one chunk in flight, one paid at a time."""
        if self.trust is not None and self.trust.on_probation(provider):
            return 1
        return self._per_provider

    def _sizable(self) -> bool:
        """More chunks left than the providers fetch at once: worth a look at their markets
        (a page asset of a chunk or two is done before the answer would come)."""
        window = self.window
        left = None if window.end is None else window.end - window.next
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

    def _pick(self, skip: dict[int, float], provider: str, runs: bool) -> int | None:
        """:meth:`DownloadWindow.pick` for ``provider``, within the reach if it is asked for
        runs: one slower than the best looks from further into the window first."""
        lag = self.choice.lag(provider, self.verifier.head.chunk_size, self.window.size)
        return self.window.pick(skip, lag, time.monotonic(), provider, runs)

    def _take(self, provider: str, index: int, delivered: Delivered) -> None:
        self.book.took(provider, delivered)
        if not self.window.take(index, delivered.data, provider, time.monotonic()):
            self.progress.providers[provider].raced += 1
        self._notify()

    def _release(self, index: int, provider: str) -> None:
        self.window.release(index, provider)
        self._notify()

    async def wait_changed(self) -> None:
        """Until the window moved or something else changed (at most 0.5 s)."""
        await self._wait()

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


class _RunRoom:
    """The window's room as one provider's run sees it (:class:`requester.chunk_runs.Room`):
    while the run waits for room, the provider is held back, not silent."""

    def __init__(self, scheduler: ChunkScheduler, provider: str) -> None:
        self._scheduler = scheduler
        self._provider = provider

    def fits(self, index: int) -> bool:
        window = self._scheduler.window
        if window.fits(index):
            return True
        window.held_back(self._provider, time.monotonic())
        return False

    async def changed(self) -> None:
        await self._scheduler.wait_changed()
