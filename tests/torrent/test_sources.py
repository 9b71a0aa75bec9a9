"""Parsing what requesters name as torrent content: every bad input is a precise 400."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import libtorrent as lt
import pytest

from cdn_edge.torrent.errors import TorrentStorageFull, TorrentUnavailable, storage_error
from cdn_edge.torrent.sources import (
    MAX_TORRENT_FILE_BYTES,
    TorrentSpec,
    check_path,
    list_files,
    parse_magnet,
    parse_source,
    parse_torrent_file,
)
from requester.protocol import MalformedMessage

V1 = bytes(range(1, 21))
V2 = bytes(range(32, 64))


def test_magnet_v1_hex_with_peers_name_and_trackers() -> None:
    spec = parse_source(
        f"magnet:?xt=urn:btih:{V1.hex().upper()}&dn=My+File&x.pe=127.0.0.1:6881"
        "&x.pe=[::1]:6882&tr=udp://tracker.example:1337&xl=123"
    )
    assert spec == TorrentSpec(
        V1, None, "My File", (("127.0.0.1", 6881), ("::1", 6882)), ("udp://tracker.example:1337",)
    )
    assert spec.infohash == V1


def test_magnet_v1_base32() -> None:
    b32 = base64.b32encode(V1).decode().lower()
    assert parse_magnet(f"MAGNET:?xt=urn:btih:{b32}").v1 == V1


def test_magnet_v2_and_hybrid() -> None:
    v2 = parse_magnet(f"magnet:?xt=urn:btmh:1220{V2.hex()}")
    assert (v2.v1, v2.v2, v2.infohash) == (None, V2, V2)
    hybrid = parse_magnet(f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btmh:1220{V2.hex()}")
    assert (hybrid.v1, hybrid.v2, hybrid.infohash) == (V1, V2, V2)
    numbered = parse_magnet(f"magnet:?xt.1=urn:btih:{V1.hex()}&xt.2=urn:btmh:1220{V2.hex()}")
    assert (numbered.v1, numbered.v2) == (V1, V2)


def test_bare_infohashes() -> None:
    assert parse_source(V1.hex()) == TorrentSpec(V1, None)
    assert parse_source(f"  {V2.hex()}\n") == TorrentSpec(None, V2)


def test_extra_peers_merge_without_duplicates() -> None:
    spec = parse_magnet(f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=10.0.0.1:1")
    assert spec.with_peers([("10.0.0.1", 1), ("10.0.0.2", 2)]).peers == (
        ("10.0.0.1", 1),
        ("10.0.0.2", 2),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://example.com/x.torrent", "magnet link or an infohash"),
        (V1.hex()[:39], "40 (v1) or 64 (v2) hex"),
        ("magnet:", "starts with 'magnet:?'"),
        ("magnet:?dn=x", "no xt="),
        ("magnet:?xt=urn:btih:abc", "40 hex or 32 base32 characters, got 3"),
        (f"magnet:?xt=urn:btih:{'g' * 40}", "40 hex or 32 base32"),
        (f"magnet:?xt=urn:btmh:1114{V2.hex()}", "SHA-256 multihash"),
        (f"magnet:?xt=urn:btmh:1220{V2.hex()[:-2]}", "64 hex digits"),
        ("magnet:?xt=urn:ed2k:31d6cfe0d16ae931b73c59d7e0c089c0", "unsupported magnet xt"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btih:{V2.hex()[:40]}", "two different"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=seed.example:6881", "IP:PORT"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1:0", "port out of range"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1:70000", "port out of range"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=999.0.0.1:1", "not an IP address"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&tr=file:///etc/passwd", "not an http(s)/udp URL"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&dn={'a' * 2000}", "dn longer than"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&{'&'.join(['a=b'] * 300)}", "does not parse"),
        ("magnet:?" + "x" * 20000, "longer than"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&dn=%ff", "does not parse"),
    ],
)
def test_bad_sources_are_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(MalformedMessage, match=re.escape(message)):
        parse_source(text)


def test_too_many_peers() -> None:
    peers = "&".join(f"x.pe=10.0.{i // 250}.{i % 250 + 1}:1" for i in range(65))
    with pytest.raises(MalformedMessage, match="over 64 peers"):
        parse_magnet(f"magnet:?xt=urn:btih:{V1.hex()}&{peers}")


def make_metainfo(root: Path, flags: int = 0) -> bytes:
    """A small multi-file torrent: two files, so a hybrid one carries pad files."""
    (root / "t" / "sub").mkdir(parents=True)
    (root / "t" / "a.bin").write_bytes(b"a" * 40000)
    (root / "t" / "sub" / "b.bin").write_bytes(b"b" * 1000)
    creator = lt.create_torrent(lt.list_files(str(root / "t")), 16384, flags)
    lt.set_piece_hashes(creator, str(root))
    return bytes(lt.bencode(creator.generate()))


def test_torrent_file_parses_and_lists_real_files(tmp_path: Path) -> None:
    metainfo = make_metainfo(tmp_path)
    spec = parse_torrent_file(metainfo)
    assert spec.name == "t" and spec.metainfo == metainfo
    assert spec.v1 is not None and spec.v2 is not None
    info = lt.torrent_info(metainfo)
    layout = info.layout()
    assert any(layout.file_flags(i) & layout.flag_pad_file for i in range(layout.num_files()))
    assert [(f.path, f.size) for f in list_files(info)] == [("a.bin", 40000), ("sub/b.bin", 1000)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "not a valid .torrent"),
        (b"de", "not a valid .torrent"),
        (b"d4:info" + b"l" * 200 + b"e" * 200 + b"e", "nesting depth"),
        (b"d4:infod" + b"i1e" * 10 + b"ee", "not a valid .torrent"),
        (b"x" * (MAX_TORRENT_FILE_BYTES + 1), "limit 4194304 bytes"),
    ],
)
def test_bad_torrent_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_torrent_file(data)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "bad file path"),
        ("../etc/passwd", "bad file path"),
        ("a/./b", "bad file path"),
        ("a//b", "bad file path"),
        ("/abs", "bad file path"),
        ("a/", "bad file path"),
        ("a\x00b", "bad file path"),
        ("x" * 4097, "longer than 4096"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_bad_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        check_path(path)


def test_good_path() -> None:
    assert check_path("data/sub/b.bin") == "data/sub/b.bin"


def test_storage_errors_map_to_507_and_503() -> None:
    full = storage_error(28, "generic", "No space left on device", "writing x")
    assert isinstance(full, TorrentStorageFull) and full.status == 507
    other = storage_error(13, "system", "Permission denied", "writing x")
    assert isinstance(other, TorrentUnavailable) and other.status == 503
    assert "Permission denied" in other.message
    # libtorrent's own category reuses small numbers for other meanings
    assert storage_error(28, "libtorrent", "x", "y").status == 503
