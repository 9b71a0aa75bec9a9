"""Reading one file of a torrent in order while libtorrent downloads it.

Only that file is wanted and the torrent downloads sequentially (the session adds
every torrent with ``sequential_download``), so pieces mostly finish in the order the
reader needs them. Bytes are yielded strictly in order, each piece only after
libtorrent verified its hash: the reader asks libtorrent for a piece's bytes as soon
as it is verified (from libtorrent's store buffer, else the page cache), up to a few
MiB ahead of the caller, and slices it to the file's byte range (so pad files and v1
pieces that straddle files come out right). Memory per stream is bounded by that
read-ahead (at least one piece), never by the file's size.

Piece deadlines are kept for stalls only: a reader that has waited ``RESCUE_AFTER``
for its next piece gives that one piece a deadline, so libtorrent asks the fastest
peers for it. A window of deadlines on the pieces ahead (before issue 18) made
libtorrent request those only at its ticks and cancel its pipelined requests each
time the window emptied: on loopback the stream ran at a third of a plain client's
speed (docs/edge.md, Torrents).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable

from cdn_edge.torrent.errors import TorrentTimeout, TorrentUnavailable
from cdn_edge.torrent.sources import TorrentFile
from cdn_edge.torrent.state import Torrent

__all__ = ["RESCUE_AFTER", "TICK", "FileReader"]

RESCUE_AFTER = 0.5
"""Seconds a reader waits for its next piece before giving that piece a deadline."""
RESCUE_DEADLINE_MS = 0
READ_AHEAD_BYTES = 4 << 20
"""Verified pieces read ahead of the caller (at least one): what bounds a stream's memory."""
READ_TIMEOUT = 30.0
SOURCE_POLL = 0.02
"""How often a new stream looks for a peer with its first piece (a bitfield raises no alert)."""
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
        self._rescued: set[int] = set()
        """Pieces this stream gave a deadline after waiting for them."""

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        """The file's bytes in order, at most one piece per block.

        The first item is ``b""``, as soon as a connected peer has the file's first piece
        (or it is verified already): the caller signs and sends a manifest head while that
        piece downloads, so the requester's chunk request is waiting when it arrives.
        """
        torrent, handle, file = self.torrent, self.torrent.handle, self.file
        plen = self.piece_length
        start, end = file.offset, file.offset + file.size
        first, last = start // plen, (end - 1) // plen
        read_ahead = max(1, READ_AHEAD_BYTES // plen)
        torrent.users += 1  # the stream outlives a closed handle
        piece = asked = first
        reads: deque[asyncio.Future[bytes]] = deque()
        try:
            # The priority change first (it goes out at once): sync_pieces waits for
            # libtorrent's network thread, which may be busy checking the new torrent.
            torrent.want(file.index)
            torrent.sync_pieces()
            await self._wait_source(first)
            yield b""
            # Reads only once the file's priority has applied: a piece fetched while its
            # file is unwanted lands in libtorrent's part file, and moving it out races with
            # its pending write ("file too short"), which stops the torrent.
            await self._settle()
            while piece <= last:
                if torrent.error is not None:
                    raise torrent.error
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
                for p in self._rescued:
                    handle.reset_piece_deadline(p)
            torrent.unwant(file.index)
            self._release(torrent)

    async def _wait_source(self, piece: int) -> None:
        """Until ``piece`` is verified or a connected peer has it; 504 after the first timeout.

        Enough to sign a head for the file: a torrent nobody seeds still fails before
        that, and a peer that has the piece but never sends it fails the stream later,
        like a stall anywhere in the file.
        """
        torrent = self.torrent
        loop = asyncio.get_running_loop()
        deadline = checked = loop.time()
        deadline += self._first_timeout
        while piece not in torrent.verified and not torrent.has_source(piece):
            if torrent.error is not None:
                raise torrent.error
            now = loop.time()
            if now >= deadline:
                peers = torrent.handle.status(0).num_peers
                raise TorrentTimeout(
                    f"no data for torrent {self.name!r} within {self._first_timeout:g} s "
                    f"({peers} peers connected)"
                )
            if now - checked >= TICK:
                checked = now
                if torrent.handle.status(0).num_peers == 0:
                    torrent.connect_peers()
            await torrent.wait(min(SOURCE_POLL, deadline - now))

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
        checked = began = since
        while True:
            if torrent.error is not None:
                raise torrent.error
            if piece in torrent.verified and torrent.settled():
                return
            rescue_in = began + RESCUE_AFTER - loop.time()
            if piece not in self._rescued and rescue_in <= 0 and torrent.settled():
                self._rescued.add(piece)  # its deadline is reset when the stream ends
                torrent.handle.set_piece_deadline(piece, RESCUE_DEADLINE_MS)
            waiting = piece not in self._rescued and rescue_in > 0
            await torrent.wait(min(TICK, rescue_in) if waiting else TICK)
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
