"""What the edge knows about one torrent, kept current from libtorrent's alerts.

Readers hardly ever poll libtorrent for piece state: the session's alert pump feeds each
alert to :meth:`Torrent.on_alert`, which records verified pieces, resolves piece
reads and records errors, then wakes every waiter to re-check what it waits for.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import libtorrent as lt

from cdn_edge.torrent.errors import storage_error
from cdn_edge.torrent.sources import Peer
from requester.errors import Refusal, ServiceRefusal

__all__ = ["Torrent"]

WANTED_PRIORITY = 4
PRIORITY_SETTLE_S = 5.0


class Torrent:
    """One torrent in the session, shared by every fetch of it."""

    def __init__(self, handle: lt.torrent_handle, save_dir: Path, peers: tuple[Peer, ...]) -> None:
        self.handle = handle
        self.save_dir = save_dir
        self.peers = list(peers)
        self.users = 0
        """Open handles and live streams; the session removes the torrent when none are left."""
        self.error: Refusal | None = None
        self.verified: set[int] = set()
        self.reads: dict[int, list[asyncio.Future[bytes]]] = {}
        self.wanted: Counter[int] = Counter()
        """Live streams per file index: a file is downloaded while anyone streams it."""
        self.changed = asyncio.Event()
        self._priority_calls = 0
        self._priority_alerts = 0
        self._priority_since = 0.0

    def notify(self) -> None:
        """Wake every waiter; each re-checks the state it waits for."""
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Until the next alert about this torrent, or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), seconds)

    def fail(self, error: Refusal) -> None:
        if self.error is None:
            self.error = error
        for futures in self.reads.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self.reads.clear()
        self.notify()

    def sync_pieces(self) -> None:
        """Learn the pieces verified before we watched (a shared or seeding torrent)."""
        pieces = self.handle.status(lt.status_flags_t.query_pieces).pieces
        self.verified.update(i for i, have in enumerate(pieces) if have)

    def has_source(self, piece: int) -> bool:
        """Whether a connected peer has ``piece`` (libtorrent's availability, seeds counted)."""
        availability = self.handle.piece_availability()
        return piece < len(availability) and availability[piece] > 0

    def read_piece(self, piece: int) -> asyncio.Future[bytes]:
        """A verified piece's bytes, read through libtorrent (its store buffer, then disk)."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiting = self.reads.setdefault(piece, [])
        waiting.append(future)
        if len(waiting) == 1:
            self.handle.read_piece(piece)
        return future

    def connect_peers(self) -> None:
        for peer in self.peers:
            self.handle.connect_peer(peer)

    def want(self, index: int) -> None:
        """Download file ``index`` (sequentially) while at least one stream wants it."""
        self.wanted[index] += 1
        if self.wanted[index] == 1:
            self._set_priority(index, WANTED_PRIORITY)

    def unwant(self, index: int) -> None:
        self.wanted[index] -= 1
        if self.wanted[index] <= 0:
            del self.wanted[index]
            if self.handle.is_valid():
                if not self.wanted:  # requests start again only once the next want applied
                    self.handle.set_flags(lt.torrent_flags.upload_mode)
                self._set_priority(index, 0)

    def _set_priority(self, index: int, priority: int) -> None:
        self.handle.file_priority(index, priority)
        self._priority_calls += 1
        self._priority_since = asyncio.get_running_loop().time()

    def settled(self) -> bool:
        """Whether every file priority change has applied (its ``file_prio_alert`` came).

        A change moves data between libtorrent's part file and the real files; readers
        and new deadlines wait for it. If an alert ever went missing, waiting ends after
        PRIORITY_SETTLE_S.
        """
        if self._priority_alerts >= self._priority_calls:
            return True
        return asyncio.get_running_loop().time() - self._priority_since > PRIORITY_SETTLE_S

    def on_alert(self, alert: lt.torrent_alert) -> None:
        if isinstance(alert, lt.piece_finished_alert):
            self.verified.add(alert.piece_index)
        elif isinstance(alert, lt.read_piece_alert):
            self._piece_read(alert)
        elif isinstance(alert, lt.file_error_alert):
            self.fail(_storage_error(alert.error, f"using {alert.filename()}"))
        elif isinstance(alert, lt.torrent_error_alert):
            self.fail(_storage_error(alert.error, "running the torrent"))
        elif isinstance(alert, lt.file_prio_alert):
            self._priorities_applied()
        self.notify()

    def _priorities_applied(self) -> None:
        self._priority_alerts += 1
        if self.wanted:
            # Restart sequential mode (the picker keeps its cursors from when nothing was
            # wanted: without this toggle, or without the flag set when the torrent was
            # added, libtorrent 2.1 picked the pieces at random), then let requests go out
            # (upload mode held them: otherwise the priority change let libtorrent send one
            # request for a random piece, end-game style, before this toggle; the file's
            # first piece was asked for only once that answer came, 5-130 ms later), and
            # dial peers again (a torrent that wanted nothing counted as finished, and seeds
            # may have hung up).
            self.handle.unset_flags(lt.torrent_flags.sequential_download)
            self.handle.set_flags(lt.torrent_flags.sequential_download)
            self.handle.unset_flags(lt.torrent_flags.upload_mode)
            self.connect_peers()

    def _piece_read(self, alert: lt.read_piece_alert) -> None:
        futures = self.reads.pop(alert.piece, [])
        if alert.error.value():
            error = _storage_error(alert.error, f"reading piece {alert.piece}")
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        data = alert.buffer  # a copy; the alert itself dies at the next pop
        for future in futures:
            if not future.done():
                future.set_result(data)


def _storage_error(code: lt.error_code, where: str) -> ServiceRefusal:
    return storage_error(code.value(), code.category().name(), code.message(), where)
