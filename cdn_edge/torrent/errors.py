"""Refusals of the torrent fetcher, each a :class:`ServiceRefusal` with the HTTP status that fits.

Bad input from the requester (magnet, infohash, .torrent, path) is a plain
``MalformedMessage`` (400); these cover what goes wrong afterwards::

    ServiceRefusal (requester/errors.py)
    ├── TorrentFileNotFound   404 torrent_file_not_found  path not among the torrent's files
    ├── TorrentTooLarge       413 torrent_too_large       file over the edge's size cap
    ├── TorrentUnsupported    422 torrent_unsupported     e.g. pieces too big to stream in memory
    ├── TorrentUnavailable    503 torrent_unavailable     storage error, too many torrents, closing
    ├── TorrentTimeout        504 torrent_timeout         no metadata / no peers / stalled download
    └── TorrentStorageFull    507 insufficient_storage    the edge's disk is full
"""

from __future__ import annotations

import errno

from requester.errors import ServiceRefusal

__all__ = [
    "TorrentFileNotFound",
    "TorrentStorageFull",
    "TorrentTimeout",
    "TorrentTooLarge",
    "TorrentUnavailable",
    "TorrentUnsupported",
    "storage_error",
]


class TorrentFileNotFound(ServiceRefusal):
    status = 404
    code = "torrent_file_not_found"


class TorrentTooLarge(ServiceRefusal):
    status = 413
    code = "torrent_too_large"


class TorrentUnsupported(ServiceRefusal):
    status = 422
    code = "torrent_unsupported"


class TorrentUnavailable(ServiceRefusal):
    status = 503
    code = "torrent_unavailable"


class TorrentTimeout(ServiceRefusal):
    status = 504
    code = "torrent_timeout"


class TorrentStorageFull(ServiceRefusal):
    status = 507
    code = "insufficient_storage"


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_error(value: int, category: str, message: str, where: str) -> ServiceRefusal:
    """Map a libtorrent storage ``error_code`` to a refusal: a full disk is 507, the rest 503.

    Only the ``generic``/``system`` categories carry errno values; in libtorrent's own
    category the same numbers mean other things.
    """
    if category in ("generic", "system") and value in _DISK_FULL:
        return TorrentStorageFull(f"the edge's disk is full ({message}) while {where}")
    return TorrentUnavailable(f"torrent storage error while {where}: {message}")
