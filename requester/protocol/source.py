"""What a manifest describes: a URL, or one file inside a torrent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from requester.protocol.codec import Reader, Writer
from requester.protocol.errors import MalformedMessage

MAX_URL_BYTES = 8192
MAX_TORRENT_PATH_BYTES = 4096

_URL = re.compile(r"https?://[\x21-\x7e]+", re.ASCII)


class SourceKind:
    URL = 1
    BTIH = 2
    """BitTorrent v1 infohash (SHA-1, 20 bytes)."""
    BTMH = 3
    """BitTorrent v2 infohash (SHA-256, 32 bytes)."""


@dataclass(frozen=True, slots=True)
class UrlSource:
    url: str

    def __post_init__(self) -> None:
        # Characters, not UTF-8 bytes: a lone surrogate cannot be encoded, and the
        # pattern below admits ASCII only, where the two counts agree.
        if len(self.url) > MAX_URL_BYTES:
            raise MalformedMessage(f"URL longer than {MAX_URL_BYTES} bytes")
        if not _URL.fullmatch(self.url):
            raise MalformedMessage(
                f"URL must be absolute http(s) in printable ASCII: {self.url[:80]!r}"
            )


@dataclass(frozen=True, slots=True)
class TorrentSource:
    infohash: bytes
    """20 bytes for a v1 (btih) infohash, 32 for a v2 (btmh) one."""
    path: str
    """The file's path inside the torrent, ``/``-separated, without the torrent's name."""

    def __post_init__(self) -> None:
        if len(self.infohash) not in (20, 32):
            raise MalformedMessage("a torrent infohash is 20 (v1) or 32 (v2) bytes")
        try:
            size = len(self.path.encode("utf-8"))
        except UnicodeEncodeError:
            raise MalformedMessage("torrent file path is not valid Unicode text") from None
        if size > MAX_TORRENT_PATH_BYTES:
            raise MalformedMessage(f"torrent file path longer than {MAX_TORRENT_PATH_BYTES} bytes")
        parts = self.path.split("/")
        if not self.path or any(p in ("", ".", "..") for p in parts) or "\x00" in self.path:
            raise MalformedMessage(f"bad file path inside torrent: {self.path[:80]!r}")


Source = UrlSource | TorrentSource


def write_source(w: Writer, source: Source) -> None:
    if isinstance(source, UrlSource):
        w.u8(SourceKind.URL).text16(source.url)
    else:
        kind = SourceKind.BTIH if len(source.infohash) == 20 else SourceKind.BTMH
        w.u8(kind).fixed(source.infohash, len(source.infohash)).text16(source.path)


def read_source(r: Reader) -> Source:
    kind = r.u8()
    if kind == SourceKind.URL:
        return UrlSource(r.text16(MAX_URL_BYTES, "url"))
    if kind in (SourceKind.BTIH, SourceKind.BTMH):
        infohash = r.fixed(20 if kind == SourceKind.BTIH else 32)
        return TorrentSource(infohash, r.text16(MAX_TORRENT_PATH_BYTES, "torrent path"))
    raise MalformedMessage(f"unknown source kind {kind}")
