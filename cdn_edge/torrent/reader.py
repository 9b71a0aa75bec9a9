"""Reading one file of a torrent in order while libtorrent downloads it.

Only that file is wanted; the download is sequential, with piece deadlines on a
window just ahead of the reader, and bytes are yielded strictly in order, each
piece only after libtorrent verified its hash. Pieces finish out of order: the
reader waits for the next one it needs, reads it back through libtorrent (so pad
files and v1 pieces that straddle files come out right) and slices it to the
file's byte range. Memory per stream is bounded by a few MiB of read-ahead (at
least one piece), never by the file's size.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable

from cdn_edge.torrent.errors import TorrentTimeout, TorrentUnavailable
from cdn_edge.torrent.sources import TorrentFile
from cdn_edge.torrent.state import Torrent

__all__ = ["TICK", "FileReader"]

DEADLINE_SECONDS = 0.5
"""Pieces ahead of the reader get deadlines for about this much download at the current
rate (2 to 64 pieces). libtorrent fetches deadline pieces in no particular order, so a
wide window delays the next piece on a slow swarm, and a narrow one throttles a fast one
(only deadline pieces are requested while there are any)."""
MIN_DEADLINE_PIECES, MAX_DEADLINE_PIECES = 2, 64
READ_AHEAD_BYTES = 4 << 20
"""Verified pieces read ahead of the caller (at least one): what bounds a stream's memory."""
DEADLINE_STEP_MS = 200
READ_TIMEOUT = 30.0
TICK = 1.0
"""How often a waiting reader checks progress and re-dials dropped peers."""


class FileReader:
    """One stream of one file; it holds the torrent (``users``) until it ends."""

    def __init__(
        self,
        torrent: Torrent,
        file: TorrentFile,
        piece_length: int,
        name: str,
        *,
        first_timeout: float,
        stall_timeout: float,
        release: Callable[[Torrent], None],
    ) -> None:
        """``first_timeout``/``stall_timeout`` bound silence before the first/any later piece."""
        self.torrent = torrent
        self.file = file
        self.piece_length = piece_length
        self.name = name
        self._first_timeout = first_timeout
        self._stall_timeout = stall_timeout
        self._release = release
        self._rate, self._rate_at = 0, -TICK

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        """The file's bytes in order, at most one piece per block."""
        torrent, handle, file = self.torrent, self.torrent.handle, self.file
        plen = self.piece_length
        start, end = file.offset, file.offset + file.size
        first, last = start // plen, (end - 1) // plen
        read_ahead = max(1, READ_AHEAD_BYTES // plen)
        torrent.users += 1  # the stream outlives a closed handle
        torrent.sync_pieces()
        piece = asked = marked = first
        reads: deque[asyncio.Future[bytes]] = deque()
        torrent.want(file.index)
        try:
            # Deadlines only once the file's priority has applied: a piece fetched while its
            # file is unwanted lands in libtorrent's part file, and moving it out races with
            # its pending write ("file too short"), which stops the torrent.
            await self._settle()
            while piece <= last:
                if torrent.error is not None:
                    raise torrent.error
                while marked <= min(last, piece + self._window() - 1):
                    handle.set_piece_deadline(marked, (marked - piece + 1) * DEADLINE_STEP_MS)
                    marked += 1
                while (
                    asked <= last
                    and len(reads) < read_ahead
                    and asked in torrent.verified
                    and torrent.settled()
                ):
                    reads.append(torrent.read_piece(asked))  # reads overlap the caller's work
                    asked += 1
                if not reads:
                    limit = self._first_timeout if piece == first else self._stall_timeout
                    await self._wait_piece(piece, limit)
                    continue
                try:
                    data = await asyncio.wait_for(reads.popleft(), READ_TIMEOUT)
                except TimeoutError:
                    raise TorrentUnavailable(
                        f"libtorrent did not read piece {piece} within {READ_TIMEOUT:g} s"
                    ) from None
                base = piece * plen
                lo, hi = max(start, base) - base, min(end, base + len(data)) - base
                if hi <= lo:
                    raise TorrentUnavailable(f"libtorrent returned piece {piece} short")
                yield data[lo:hi]
                piece += 1
        finally:
            for future in reads:
                if not future.cancel() and not future.cancelled():
                    future.exception()  # retrieved, so asyncio does not log it
            if torrent.error is None and handle.is_valid():
                for p in range(piece, marked):
                    handle.reset_piece_deadline(p)
            torrent.unwant(file.index)
            self._release(torrent)

    def _window(self) -> int:
        """How many pieces ahead get deadlines: see DEADLINE_SECONDS."""
        now = asyncio.get_running_loop().time()
        if now - self._rate_at >= TICK:
            self._rate = self.torrent.handle.status(0).download_payload_rate
            self._rate_at = now
        pieces = int(self._rate * DEADLINE_SECONDS) // self.piece_length + 1
        return max(MIN_DEADLINE_PIECES, min(MAX_DEADLINE_PIECES, pieces))

    async def _settle(self) -> None:
        torrent = self.torrent
        while not torrent.settled():
            if torrent.error is not None:
                raise torrent.error
            await torrent.wait(TICK)

    async def _wait_piece(self, piece: int, limit: float) -> None:
        """Until ``piece`` is verified; 504 after ``limit`` seconds without any payload."""
        torrent = self.torrent
        loop = asyncio.get_running_loop()
        seen, since = -1, loop.time()
        checked = since
        while True:
            if torrent.error is not None:
                raise torrent.error
            if piece in torrent.verified and torrent.settled():
                return
            await torrent.wait(TICK)
            now = loop.time()
            if now - checked < TICK:
                continue
            checked = now
            torrent.sync_pieces()  # in case its alert was dropped from a full queue
            status = torrent.handle.status(0)
            if status.total_payload_download != seen:
                seen, since = status.total_payload_download, now
            elif now - since > limit:
                raise TorrentTimeout(
                    f"no data for torrent {self.name!r} within {limit:g} s "
                    f"({status.num_peers} peers connected)"
                )
            if status.num_peers == 0:
                torrent.connect_peers()
