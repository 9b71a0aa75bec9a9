"""Torrent content for the edge: libtorrent session, source parsing and ordered file streams.

See :mod:`cdn_edge.torrent.fetcher` for the API the fetch route uses.
"""

from cdn_edge.torrent.errors import (
    TorrentFileNotFound,
    TorrentStorageFull,
    TorrentTimeout,
    TorrentTooLarge,
    TorrentUnavailable,
    TorrentUnsupported,
)
from cdn_edge.torrent.fetcher import TorrentHandle, open_torrent
from cdn_edge.torrent.session import TorrentSession
from cdn_edge.torrent.sources import (
    MAX_TORRENT_FILE_BYTES,
    TorrentFile,
    TorrentSpec,
    parse_magnet,
    parse_peer,
    parse_source,
    parse_torrent_file,
)

__all__ = [
    "MAX_TORRENT_FILE_BYTES",
    "TorrentFile",
    "TorrentFileNotFound",
    "TorrentHandle",
    "TorrentSession",
    "TorrentSpec",
    "TorrentStorageFull",
    "TorrentTimeout",
    "TorrentTooLarge",
    "TorrentUnavailable",
    "TorrentUnsupported",
    "open_torrent",
    "parse_magnet",
    "parse_peer",
    "parse_source",
    "parse_torrent_file",
]
