"""Which chunks of a download are held, in flight and next: the window the workers pick from.

Split from :mod:`requester.downloader`, whose workers ask providers for chunks; this holds
the bookkeeping they share, with no I/O: the next index to deliver, the chunks verified
ahead of it (memory is bounded by :attr:`DownloadWindow.size` chunks), the chunks being
fetched and by whom, when each provider last showed progress, and where the content ends.
A worker takes the lowest index in the window that is neither held nor being fetched; near
the end it races a chunk held up at a provider gone silent
(:meth:`DownloadWindow.straggler`); a run is the stretch of free chunks from one index
(:meth:`DownloadWindow.claim`).
"""

from __future__ import annotations

from requester.protocol import DEFAULT_CHUNK_SIZE, ContentVerifier

STRAGGLER_AFTER = 2.0
"""Seconds of silence from a provider after which an idle worker of another may race the
chunk it holds up."""
REACH_BYTES = 4 * 32 * DEFAULT_CHUNK_SIZE
"""How far ahead of delivery, in bytes, a run may ask in a long download (32 MiB: four of
``atlas fetch``'s default windows; see :meth:`DownloadWindow.reach`). A run's frames are
read only as the window has room for them (:meth:`DownloadWindow.fits`), so memory stays
one window however far the runs reach: a small window (the proxy's) does not shorten the
runs, and costs no more requests and vouchers per byte."""


class DownloadWindow:
    """The chunks of one download between delivery and the window's end."""

    def __init__(self, verifier: ContentVerifier, window: int, start_index: int) -> None:
        self.verifier = verifier
        self.size = max(4, window * DEFAULT_CHUNK_SIZE // verifier.head.chunk_size)
        """Chunks ahead of delivery held or being read at most: ``window`` chunks of 256
        KiB's worth of bytes (8 MiB by default), so larger chunks mean fewer, not more
        memory."""
        self.next = start_index
        """The next chunk to deliver."""
        self.ready: dict[int, bytes] = {}
        """Chunks verified ahead of :attr:`next`."""
        self.inflight: dict[int, str] = {}
        """Chunks being fetched, and the provider asked first."""
        self.raced: dict[int, str] = {}
        """Chunks raced, and the provider racing (one race per chunk)."""
        self.heard: dict[str, float] = {}
        """When each provider last showed progress on what it was asked (monotonic seconds):
        a chunk delivered, a request begun while it had none, or a run of it held back by
        the window. A run claims all its chunks at once, and one provider's chunks wait on
        each other: a chunk's own age would call a run in steady progress late, and race
        (fetch and pay twice) what was coming anyway."""
        self.end: int | None = None
        """The chunk count, once known (the seal, or a provider's word that it ended)."""
        seal = verifier.seal
        if seal is not None:
            self.end = seal.chunk_count

    @property
    def done(self) -> bool:
        return self.end is not None and self.next >= self.end

    def ends_at(self, index: int) -> None:
        """The content has no chunk from ``index`` on (the earliest such word wins)."""
        self.end = index if self.end is None else min(self.end, index)

    def pop_next(self) -> bytes | None:
        """The next chunk to deliver, if it is held (the window moves on past it)."""
        data = self.ready.pop(self.next, None)
        if data is not None:
            self.next += 1
        return data

    def asked(self, provider: str, indexes: list[int], now: float) -> None:
        """``provider`` is asked for ``indexes``: a chunk already in flight elsewhere is
        raced; a provider asked while it had nothing in flight is heard from now."""
        if provider not in self.inflight.values() and provider not in self.raced.values():
            self.heard[provider] = now
        for index in indexes:
            if self.inflight.setdefault(index, provider) != provider:
                self.raced[index] = provider

    def take(self, index: int, data: bytes, provider: str, now: float) -> bool:
        """Chunk ``index`` arrived from ``provider``, verified: kept until delivered. False
        when another copy came first (a raced chunk: paid, and thrown away)."""
        self.heard[provider] = now
        self.inflight.pop(index, None)
        self.raced.pop(index, None)
        seal = self.verifier.seal
        if seal is not None:
            self.end = seal.chunk_count
        if index < self.next or index in self.ready:
            return False
        self.ready[index] = data
        return True

    def release(self, index: int, provider: str) -> None:
        """``provider`` will not bring chunk ``index``: the racer's, if it is raced, else free
        for any worker to pick again."""
        if self.raced.get(index) == provider:
            del self.raced[index]
        elif self.inflight.get(index) == provider:
            racer = self.raced.pop(index, None)
            if racer is None:
                del self.inflight[index]
            else:
                self.inflight[index] = racer

    def held_back(self, provider: str, now: float) -> None:
        """A run of ``provider``'s waits for room in the window: not its silence."""
        self.heard[provider] = now

    def straggler(self, now: float, asker: str) -> int | None:
        """The lowest chunk in flight at a provider other than ``asker`` silent for longer
        than :data:`STRAGGLER_AFTER`, and not raced, or raced by a provider gone silent too
        (one hanging racer must not hold the chunk from the others): for ``asker`` to race."""
        late = [i for i, p in self.inflight.items() if p != asker and self._silent(p, now)
                and self._race_open(i, asker, now)]  # fmt: skip
        return min(late) if late else None

    def _silent(self, provider: str, now: float) -> bool:
        return now - self.heard.get(provider, now) > STRAGGLER_AFTER

    def _race_open(self, index: int, asker: str, now: float) -> bool:
        racer = self.raced.get(index)
        return racer is None or (racer != asker and self._silent(racer, now))

    def expected_end(self) -> int | None:
        """The chunk count: sealed, or from the size the origin edge signed in the head (the
        seal usually comes last). Runs stop there: a run past it would be paid for chunks
        that do not exist (an edge understating the size only shortens runs)."""
        return self.end if self.end is not None else self.verifier.head.stated_chunks

    def fits(self, index: int) -> bool:
        """Whether chunk ``index`` may be read now: it is within the window."""
        return index < self.next + self.size

    def reach(self) -> int:
        """How far ahead of delivery a run may ask: :data:`REACH_BYTES` of chunks, but no
        more than half of what is left, and never less than the window. Fewer, longer runs
        cost less per byte; a short download keeps its runs in the window, so a provider that
        joins late (found by a tracker, proven on probation) still finds chunks to take."""
        end = self.expected_end()
        if end is None:
            return self.size
        far = REACH_BYTES // self.verifier.head.chunk_size
        return max(self.size, min(far, (end - self.next) // 2))

    def run_share(self, providers: int) -> int:
        """How many chunks one provider's run may ask for: the reach divided among the
        ``providers``, shrinking near the end so no one long run holds it."""
        share = self.reach() // providers  # a worker finding no room in the reach waits
        end = self.expected_end()
        if end is not None:
            share = min(share, (end - self.next) // (2 * providers))
        return share

    def claim(self, first: int, count: int, skip: dict[int, float]) -> list[int]:
        """``first`` and the chunks after it nobody holds or fetches, up to ``count`` and the
        reach."""
        limit = self.next + self.reach()
        end = self.expected_end()
        if end is not None:
            limit = min(limit, end)
        indexes = [first]
        for index in range(first + 1, min(first + count, limit)):
            if index in self.ready or index in self.inflight or index in skip:
                break
            indexes.append(index)
        return indexes

    def pick(self, skip: dict[int, float], lag: int, now: float, asker: str,
             reach: bool = False) -> int | None:  # fmt: skip
        """The next-needed chunk nobody holds or fetches in the window (the reach with
        ``reach``: for a run), minus those in ``skip`` (a provider lacked them, until when);
        a provider slower than the best looks from ``lag`` chunks further first; else a
        straggler to race."""
        for index in [i for i, until in skip.items() if until <= now or i < self.next]:
            del skip[index]
        limit = self.next + (self.reach() if reach else self.size)
        if self.end is not None:
            limit = min(limit, self.end)
        for start, stop in ((self.next + lag, limit), (self.next, self.next + lag)):
            for index in range(start, min(stop, limit)):
                if index not in self.ready and index not in self.inflight and index not in skip:
                    return index
        return self.straggler(now, asker)
