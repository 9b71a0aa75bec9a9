"""What a requester may name as torrent content: a magnet link, a bare infohash or a .torrent.

All of it comes from strangers, so every part is checked before libtorrent sees it,
and every refusal is a ``MalformedMessage`` (400) that says exactly what is wrong.
Parsing is pure except for :func:`parse_torrent_file`, which lets libtorrent decode
the bencode under explicit limits (size, nesting, token count, piece count).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qsl

import libtorrent as lt

from requester.protocol import MalformedMessage, TorrentSource
from requester.protocol.source import MAX_TORRENT_PATH_BYTES

__all__ = [
    "MAX_TORRENT_FILE_BYTES",
    "TorrentFile",
    "TorrentSpec",
    "check_path",
    "find_file",
    "list_files",
    "load_limits",
    "parse_infohash",
    "parse_magnet",
    "parse_peer",
    "parse_source",
    "parse_torrent_file",
]

MAX_MAGNET_LENGTH = 16384
MAX_MAGNET_FIELDS = 256
MAX_PEERS = 64
MAX_TRACKERS = 32
MAX_NAME_LENGTH = 1024
MAX_TORRENT_FILE_BYTES = 4 << 20
MAX_DECODE_DEPTH = 100
MAX_DECODE_TOKENS = 3_000_000
MAX_PIECES = 1 << 20

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_BASE32 = re.compile(r"[A-Za-z2-7]{32}")
_XT_KEY = re.compile(r"xt(\.[0-9]{1,3})?")
_TRACKER = re.compile(r"(https?|udp)://[\x21-\x7e]{1,2040}", re.ASCII)
_PEER = re.compile(r"\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})|([0-9.]+):([0-9]{1,5})", re.ASCII)

Peer = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """One torrent a requester asked for; at least one of ``v1``/``v2`` is set."""

    v1: bytes | None
    """SHA-1 infohash (20 bytes) of a v1 or hybrid torrent."""
    v2: bytes | None
    """SHA-256 infohash (32 bytes) of a v2 or hybrid torrent."""
    name: str | None = None
    peers: tuple[Peer, ...] = ()
    """Peers to connect to at once (magnet ``x.pe``), IP literals only."""
    trackers: tuple[str, ...] = ()
    """Tracker URLs (magnet ``tr``); used only when the session allows trackers."""
    metainfo: bytes | None = None
    """The uploaded .torrent, already checked by :func:`parse_torrent_file`."""

    def __post_init__(self) -> None:
        if self.v1 is None and self.v2 is None:
            raise MalformedMessage("a torrent needs a v1 or v2 infohash")
        if (self.v1 is not None and len(self.v1) != 20) or (
            self.v2 is not None and len(self.v2) != 32
        ):
            raise MalformedMessage("infohashes are 20 (v1) and 32 (v2) bytes")

    @property
    def infohash(self) -> bytes:
        """The infohash the manifest names: v2 when known (SHA-256 binds the data), else v1."""
        best = self.v2 or self.v1
        assert best is not None
        return best

    def with_peers(self, peers: Sequence[Peer]) -> TorrentSpec:
        """The same torrent with extra peers (say, for a bare infohash) after the known ones."""
        merged = tuple(dict.fromkeys((*self.peers, *peers)))
        if len(merged) > MAX_PEERS:
            raise MalformedMessage(f"more than {MAX_PEERS} peers for one torrent")
        return TorrentSpec(self.v1, self.v2, self.name, merged, self.trackers, self.metainfo)


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """A real file of a torrent (pad files and symlinks left out)."""

    index: int
    """libtorrent's file index (pad files count)."""
    path: str
    """``/``-separated, without the torrent's name for a multi-file torrent."""
    size: int
    offset: int
    """Where the file starts in the torrent's byte stream (pieces address that stream)."""


def parse_source(text: str) -> TorrentSpec:
    """A magnet link or a bare infohash (40 hex digits for v1, 64 for v2)."""
    text = text.strip()
    if text[:7].lower() == "magnet:":
        return parse_magnet(text)
    return parse_infohash(text)


def parse_infohash(text: str) -> TorrentSpec:
    if _HEX40.fullmatch(text):
        return TorrentSpec(bytes.fromhex(text), None)
    if _HEX64.fullmatch(text):
        return TorrentSpec(None, bytes.fromhex(text))
    raise MalformedMessage(
        f"expected a magnet link or an infohash of 40 (v1) or 64 (v2) hex digits: {text[:80]!r}"
    )


def parse_magnet(uri: str) -> TorrentSpec:
    """BEP 9 magnet with ``urn:btih`` (v1), ``urn:btmh:1220`` (v2) or both (hybrid)."""
    if len(uri) > MAX_MAGNET_LENGTH:
        raise MalformedMessage(f"magnet link longer than {MAX_MAGNET_LENGTH} characters")
    if uri[:8].lower() != "magnet:?":
        raise MalformedMessage(f"a magnet link starts with 'magnet:?': {uri[:80]!r}")
    try:
        fields = parse_qsl(
            uri[8:], keep_blank_values=True, strict_parsing=True,
            max_num_fields=MAX_MAGNET_FIELDS, errors="strict",
        )  # fmt: skip
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"magnet link does not parse: {exc}") from None
    digests: dict[int, set[bytes]] = {1: set(), 2: set()}
    names = [value for key, value in fields if key == "dn"]
    peers = tuple(dict.fromkeys(parse_peer(v) for k, v in fields if k == "x.pe"))
    trackers = tuple(dict.fromkeys(v for k, v in fields if k == "tr"))
    for key, value in fields:
        if _XT_KEY.fullmatch(key):
            kind, digest = _parse_xt(value)
            digests[kind].add(digest)
    if not digests[1] and not digests[2]:
        raise MalformedMessage("magnet link has no xt=urn:btih:... or xt=urn:btmh:1220...")
    if len(digests[1]) > 1 or len(digests[2]) > 1:
        raise MalformedMessage("magnet link names two different infohashes of one kind")
    if any(len(name) > MAX_NAME_LENGTH for name in names):
        raise MalformedMessage(f"magnet dn longer than {MAX_NAME_LENGTH} characters")
    if len(peers) > MAX_PEERS or len(trackers) > MAX_TRACKERS:
        raise MalformedMessage(f"magnet link has over {MAX_PEERS} peers or {MAX_TRACKERS} trackers")
    bad = next((t for t in trackers if not _TRACKER.fullmatch(t)), None)
    if bad is not None:
        raise MalformedMessage(f"magnet tr is not an http(s)/udp URL: {bad[:80]!r}")
    v1 = next(iter(digests[1]), None)
    v2 = next(iter(digests[2]), None)
    return TorrentSpec(v1, v2, names[-1] if names else None, peers, trackers)


def _parse_xt(value: str) -> tuple[int, bytes]:
    low = value.lower()
    if low.startswith("urn:btih:"):
        digest = value[9:]
        if _HEX40.fullmatch(digest):
            return 1, bytes.fromhex(digest)
        if _BASE32.fullmatch(digest):
            return 1, base64.b32decode(digest.upper())
        raise MalformedMessage(
            f"urn:btih needs 40 hex or 32 base32 characters, got {len(digest)}: {digest[:80]!r}"
        )
    if low.startswith("urn:btmh:"):
        digest = value[9:]
        if not digest.startswith("1220"):
            raise MalformedMessage("urn:btmh must be a SHA-256 multihash (1220 + 64 hex digits)")
        if not _HEX64.fullmatch(digest[4:]):
            raise MalformedMessage(f"urn:btmh:1220 needs 64 hex digits after it: {digest[:80]!r}")
        return 2, bytes.fromhex(digest[4:])
    raise MalformedMessage(f"unsupported magnet xt (want urn:btih or urn:btmh): {value[:80]!r}")


def parse_peer(text: str) -> Peer:
    """``ip:port`` or ``[ipv6]:port``; host names are refused (no DNS on behalf of strangers)."""
    match = _PEER.fullmatch(text)
    if match is None:
        raise MalformedMessage(f"peer must be IP:PORT or [IPv6]:PORT: {text[:80]!r}")
    host, port_text = (match[1], match[2]) if match[1] else (match[3], match[4])
    try:
        host = str(ip_address(host))
    except ValueError:
        raise MalformedMessage(f"peer address is not an IP address: {host[:80]!r}") from None
    port = int(port_text)
    if not 0 < port < 65536:
        raise MalformedMessage(f"peer port out of range: {port}")
    return host, port


def load_limits() -> dict[str, int]:
    """libtorrent's ``load_torrent_limits``: the .torrent's size, nesting, tokens and pieces."""
    return {
        "max_buffer_size": MAX_TORRENT_FILE_BYTES,
        "max_decode_depth": MAX_DECODE_DEPTH,
        "max_decode_tokens": MAX_DECODE_TOKENS,
        "max_pieces": MAX_PIECES,
    }


def parse_torrent_file(data: bytes) -> TorrentSpec:
    """An uploaded .torrent, decoded by libtorrent under :func:`load_limits`."""
    if len(data) > MAX_TORRENT_FILE_BYTES:
        raise MalformedMessage(
            f".torrent is {len(data)} bytes, limit {MAX_TORRENT_FILE_BYTES} bytes"
        )
    info = load_params(data).ti
    assert info is not None  # load_params checked it
    hashes = info.info_hashes()
    v1 = hashes.v1.to_bytes() if hashes.has_v1() else None
    v2 = hashes.v2.to_bytes() if hashes.has_v2() else None
    return TorrentSpec(v1, v2, info.name(), metainfo=bytes(data))


def load_params(data: bytes) -> lt.add_torrent_params:
    """``add_torrent_params`` for a .torrent, or ``MalformedMessage`` with libtorrent's reason."""
    try:
        # The stub types the limits as add_torrent_params; libtorrent reads load_torrent_limits.
        params: lt.add_torrent_params = lt.load_torrent_buffer(bytes(data), load_limits())  # type: ignore[call-overload]
    except RuntimeError as exc:
        raise MalformedMessage(f"not a valid .torrent: {exc}") from None
    if params.ti is None or not params.ti.is_valid():
        raise MalformedMessage("not a valid .torrent: no info dictionary")
    return params


def check_path(path: str) -> str:
    """A file path inside a torrent: ``/``-separated, no empty, ``.`` or ``..`` parts."""
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedMessage("torrent file path is not valid Unicode text") from None
    if size > MAX_TORRENT_PATH_BYTES:
        raise MalformedMessage(f"torrent file path longer than {MAX_TORRENT_PATH_BYTES} bytes")
    TorrentSource(bytes(20), path)  # the manifest's own rules, so a served path always fits one
    return path


def list_files(info: lt.torrent_info) -> list[TorrentFile]:
    """The real files of a ``torrent_info``, with paths as requesters name them."""
    layout = info.layout()
    skip = layout.flag_pad_file | layout.flag_symlink
    files = []
    for index in range(layout.num_files()):
        if layout.file_flags(index) & skip:
            continue
        parts = Path(layout.file_path(index)).parts
        path = "/".join(parts[1:] if len(parts) > 1 else parts)
        files.append(TorrentFile(index, path, layout.file_size(index), layout.file_offset(index)))
    return files


def find_file(files: Sequence[TorrentFile], path: str) -> TorrentFile | None:
    return next((f for f in files if f.path == path), None)
