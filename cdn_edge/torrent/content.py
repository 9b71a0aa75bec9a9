"""A file in a torrent, served as Atlas content: fetched with libtorrent, chunked,
signed and paid for like any origin response.

The torrent fetcher yields the file's verified bytes in order; here they are
presented as a one-off origin response (status 200, a content type guessed
from the path, the file's length), so the content service cuts, signs and
stores them exactly as it does HTTP bodies. A file in a torrent never changes
under its infohash and path, so it is cached under that key for good.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

from yarl import URL

from cdn_edge.content.origin_fetch import OriginResponse
from cdn_edge.content.service import ContentService, FetchResult, torrent_key
from cdn_edge.torrent import TorrentSession, TorrentSpec, open_torrent
from cdn_edge.torrent.session import TorrentView
from cdn_edge.torrent.sources import Peer
from requester.protocol import TorrentSource


class TorrentContent:
    def __init__(self, session: TorrentSession, content: ContentService, *, max_size: int,
                 metadata_timeout: float) -> None:  # fmt: skip
        self._session = session
        self._content = content
        self._max_size = max_size
        self._metadata_timeout = metadata_timeout

    def uploaded(self) -> int:
        """Payload bytes seeded to peers so far (the market counts them as free traffic)."""
        return self._session.uploaded()

    def overview(self) -> list[TorrentView]:
        """The torrents in the session now (the operator's dashboard lists them)."""
        return self._session.overview()

    async def fetch(self, spec: TorrentSpec, path: str, peers: Sequence[Peer] = ()) -> FetchResult:
        """The content for ``path`` in the torrent: from the store, or fetched now."""
        infohash = spec.v2 or spec.v1
        assert infohash is not None
        source = TorrentSource(infohash, path)  # validates the path
        opener = partial(self._open, spec, path, tuple(peers))
        return await self._content.publish(torrent_key(source), source, opener)

    async def files(self, spec: TorrentSpec, peers: Sequence[Peer] = ()) -> list[dict[str, object]]:
        """The torrent's files (``[{path, size}]``), for a requester that named none."""
        handle = await open_torrent(self._session, spec, peers=peers,
                                    metadata_timeout=self._metadata_timeout)  # fmt: skip
        try:
            return handle.files()
        finally:
            await handle.close()

    @asynccontextmanager
    async def _open(self, spec: TorrentSpec, path: str,
                    peers: tuple[Peer, ...]) -> AsyncIterator[OriginResponse]:  # fmt: skip
        handle = await open_torrent(self._session, spec, peers=peers,
                                    metadata_timeout=self._metadata_timeout)  # fmt: skip
        try:
            size, body = await handle.stream(path, self._max_size)
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            headers = [("content-type", kind), ("content-length", str(size))]
            yield OriginResponse(200, headers, URL(f"torrent:{spec.name or ''}"), body)
        finally:
            await handle.close()
