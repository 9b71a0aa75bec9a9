"""Torrent content as an ordered async byte stream, for the edge's chunking pipeline.

:func:`open_torrent` adds (or shares) a torrent in the edge's session and waits for
its metadata; the :class:`TorrentHandle` it returns lists the files and streams one
of them (see :mod:`cdn_edge.torrent.reader` for how bytes come out in order).

Typical use::

    handle = await open_torrent(session, parse_source(magnet), metadata_timeout=30)
    try:
        size, body = await handle.stream(path, max_size=cap)
        head_source = handle.source(path)          # TorrentSource for the manifest
    finally:
        await handle.close()                       # the stream keeps the torrent alive
    async for block in body: ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import libtorrent as lt

from cdn_edge.torrent.errors import (
    TorrentFileNotFound,
    TorrentTimeout,
    TorrentTooLarge,
    TorrentUnavailable,
    TorrentUnsupported,
)
from cdn_edge.torrent.reader import TICK, FileReader
from cdn_edge.torrent.session import Torrent, TorrentSession
from cdn_edge.torrent.sources import (
    Peer,
    TorrentFile,
    TorrentSpec,
    check_path,
    find_file,
    list_files,
)
from requester.protocol import TorrentSource

__all__ = ["TorrentHandle", "open_torrent"]

DEFAULT_METADATA_TIMEOUT = 30.0
DEFAULT_STALL_TIMEOUT = 60.0
MAX_PIECE_LENGTH = 16 << 20
"""Bigger pieces would make one read cost too much memory; chunks top out at 16 MiB too."""
HINT_FILES = 10


async def open_torrent(
    session: TorrentSession,
    source: TorrentSpec,
    *,
    metadata_timeout: float = DEFAULT_METADATA_TIMEOUT,
    peers: Sequence[Peer] = (),
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> TorrentHandle:
    """Add (or share) the torrent and wait for its metadata; close the handle when done.

    ``peers`` are dialled at once besides the magnet's ``x.pe`` ones: the way to
    fetch a bare infohash without DHT. ``metadata_timeout`` also bounds the wait
    for the first bytes of a stream; ``stall_timeout`` bounds any later silence.
    """
    spec = source.with_peers(peers) if peers else source
    torrent = session.acquire(spec)
    try:
        await _wait_metadata(torrent, spec, metadata_timeout)
        info = torrent.handle.torrent_file()
        if info is None:
            raise TorrentUnavailable("libtorrent lost the torrent's metadata")
        session.remember_hashes(torrent)
        if info.piece_length() > MAX_PIECE_LENGTH:
            raise TorrentUnsupported(
                f"torrent pieces are {info.piece_length()} bytes; "
                f"the edge streams pieces up to {MAX_PIECE_LENGTH} bytes"
            )
    except BaseException:
        session.release(torrent)
        raise
    return TorrentHandle(session, torrent, spec, info, metadata_timeout, stall_timeout)


async def _wait_metadata(torrent: Torrent, spec: TorrentSpec, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if torrent.error is not None:
            raise torrent.error
        status = torrent.handle.status(0)
        if status.has_metadata:
            return
        left = deadline - loop.time()
        if left <= 0:
            why = "no peer found" if status.num_peers == 0 else "no peer sent it"
            raise TorrentTimeout(
                f"no metadata for torrent {spec.infohash.hex()} within {seconds:g} s ({why})"
            )
        await torrent.wait(min(left, TICK))


class TorrentHandle:
    """An open torrent with metadata: its files, and streams of one file at a time."""

    def __init__(
        self,
        session: TorrentSession,
        torrent: Torrent,
        spec: TorrentSpec,
        info: lt.torrent_info,
        first_timeout: float,
        stall_timeout: float,
    ) -> None:
        self._session = session
        self._torrent = torrent
        self._info = info
        self._files = list_files(info)
        self._first_timeout = first_timeout
        self._stall_timeout = stall_timeout
        self._closed = False
        hashes = info.info_hashes()
        self.infohash_v1: bytes | None = hashes.v1.to_bytes() if hashes.has_v1() else None
        self.infohash_v2: bytes | None = hashes.v2.to_bytes() if hashes.has_v2() else None
        self.infohash: bytes = spec.infohash
        """What the requester named (v2 when it named both): the manifest's source hash."""
        self.name: str = info.name()
        self.piece_length: int = info.piece_length()

    async def __aenter__(self) -> TorrentHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Let go of the torrent; streams already started keep it until they end."""
        if not self._closed:
            self._closed = True
            self._session.release(self._torrent)

    def files(self) -> list[dict[str, object]]:
        """The listing a requester gets when it names no file: ``[{path, size}]``."""
        return [{"path": f.path, "size": f.size} for f in self._files]

    def source(self, path: str) -> TorrentSource:
        return TorrentSource(self.infohash, path)

    def progress(self) -> float:
        """libtorrent's progress of what is wanted now, 0..1 (for metrics and tests)."""
        return float(self._torrent.handle.status(0).progress)

    def pieces_verified(self) -> int:
        """How many of the torrent's pieces libtorrent has verified (for tests and metrics)."""
        return int(self._torrent.handle.status(0).num_pieces)

    def file(self, path: str) -> TorrentFile:
        """The named file, or 404 naming some that exist."""
        check_path(path)
        found = find_file(self._files, path)
        if found is None:
            names = ", ".join(f.path for f in self._files[:HINT_FILES])
            extra = len(self._files) - HINT_FILES
            more = f" and {extra} more" if extra > 0 else ""
            raise TorrentFileNotFound(
                f"no file {path!r} in torrent {self.name!r}; it has: {names}{more}"
            )
        return found

    async def stream(self, path: str, max_size: int) -> tuple[int, AsyncIterator[bytes]]:
        """The file's size and its bytes in order, once a connected peer has its first piece.

        Waiting for a source here (not in the iterator) means a torrent nobody seeds
        fails with 504 before the caller signs a manifest head for it; the first piece
        downloads while the head is signed and sent, and the requester's request for
        the first chunk travels (before issue 18's fix the head waited for the piece to
        be verified, and the requester's round trip came on top of it).
        """
        if self._closed:
            raise TorrentUnavailable("the torrent handle is closed")
        if self._torrent.error is not None:
            raise self._torrent.error
        file = self.file(path)
        if file.size > max_size:
            raise TorrentTooLarge(f"torrent file is {file.size} bytes, edge cap {max_size}")
        if file.size == 0:
            return 0, _empty()
        reader = FileReader(
            self._torrent, file, self.piece_length, self.name,
            first_timeout=self._first_timeout, stall_timeout=self._stall_timeout,
            release=self._session.release,
        )  # fmt: skip
        blocks = reader.blocks()
        try:
            await anext(blocks)  # b"": a peer has the first piece (or it is verified)
        except BaseException:
            await blocks.aclose()
            raise
        return file.size, blocks


async def _empty() -> AsyncGenerator[bytes, None]:
    nothing: tuple[bytes, ...] = ()
    for block in nothing:
        yield block
