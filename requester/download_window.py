"""Which chunks of a download are held, in flight and next: the window the workers pick from.

Split from :mod:`requester.downloader`, whose workers ask providers for chunks; this holds
the bookkeeping they share, with no I/O: the next index to deliver, the chunks verified
ahead of it (memory is bounded by :attr:`DownloadWindow.size` chunks), the chunks being
fetched and since when, and where the content ends. A worker takes the lowest index in
the window that is neither held nor being fetched; near the end it races a chunk in
flight elsewhere for long (:meth:`DownloadWindow.straggler`); a run is the stretch of
free chunks from one index (:meth:`DownloadWindow.claim`).
"""

from __future__ import annotations

from requester.protocol import DEFAULT_CHUNK_SIZE, ContentVerifier

STRAGGLER_AFTER = 2.0
"""Seconds in flight after which an idle worker may race a chunk near the end."""
REACH = 4
"""How many windows ahead of delivery a run may ask for in a long download (see
:meth:`DownloadWindow.reach`): its frames are read only as the window has room for them
(:meth:`DownloadWindow.fits`), so memory stays one window."""


class DownloadWindow:
    """The chunks of one download between delivery and the window's end."""

    def __init__(self, verifier: ContentVerifier, window: int, start_index: int) -> None:
        self.verifier = verifier
        self.size = max(4, window * DEFAULT_CHUNK_SIZE // verifier.head.chunk_size)
        """Chunks ahead of delivery held at most: ``window`` chunks of 256 KiB's worth of
        bytes (8 MiB by default), so larger chunks mean fewer, not more memory."""
        self.next = start_index
        """The next chunk to deliver."""
        self.ready: dict[int, bytes] = {}
        """Chunks verified ahead of :attr:`next`."""
        self.inflight: dict[int, float] = {}
        """Chunks being fetched, and since when (monotonic seconds)."""
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

    def take(self, index: int, data: bytes) -> None:
        """Chunk ``index`` arrived, verified: kept until delivered (unless it was already)."""
        self.inflight.pop(index, None)
        if index >= self.next and index not in self.ready:
            self.ready[index] = data
        seal = self.verifier.seal
        if seal is not None:
            self.end = seal.chunk_count

    def release(self, index: int) -> None:
        """Chunk ``index`` did not come: free for any worker to pick again."""
        self.inflight.pop(index, None)

    def straggler(self, now: float) -> int | None:
        """The lowest chunk in flight for longer than :data:`STRAGGLER_AFTER`, to race."""
        late = [i for i, t in self.inflight.items() if now - t > STRAGGLER_AFTER]
        return min(late) if late else None

    def expected_end(self) -> int | None:
        """The chunk count: sealed, or from the size the origin edge signed in the head (the
        seal usually comes last). Runs stop there: a run past it would be paid for chunks
        that do not exist (an edge understating the size only shortens runs)."""
        return self.end if self.end is not None else self.verifier.head.stated_chunks

    def fits(self, index: int) -> bool:
        """Whether chunk ``index`` may be read now: it is within the window."""
        return index < self.next + self.size

    def reach(self) -> int:
        """How far ahead of delivery a run may ask: up to :data:`REACH` windows, but no more
        than half of what is left, and never less than the window. Fewer, longer runs cost
        less per byte; a short download keeps its runs in the window, so a provider that
        joins late (found by a tracker, proven on probation) still finds chunks to take."""
        end = self.expected_end()
        if end is None:
            return self.size
        return max(self.size, min(REACH * self.size, (end - self.next) // 2))

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

    def pick(self, skip: dict[int, float], lag: int, now: float, reach: bool = False
             ) -> int | None:  # fmt: skip
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
        return self.straggler(now)
