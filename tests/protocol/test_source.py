"""Sources: a URL, or one file in a v1/v2 torrent, and their wire form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import MalformedMessage, TorrentSource, UrlSource
from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.source import (
    MAX_TORRENT_PATH_BYTES,
    MAX_URL_BYTES,
    Source,
    SourceKind,
    read_source,
    write_source,
)
from tests.protocol.support import sources

MAGIC = MAGIC_PREFIX + b"T\x01"


def _encode(source: Source) -> bytes:
    w = Writer(MAGIC)
    write_source(w, source)
    return w.getvalue()


def _decode(data: bytes) -> Source:
    r = Reader(data, MAGIC, "source")
    source = read_source(r)
    r.end()
    return source


@settings(max_examples=300)
@given(sources)
def test_round_trip(source: Source) -> None:
    data = _encode(source)
    assert _decode(data) == source


def test_wire_layout() -> None:
    assert _encode(UrlSource("http://a")) == MAGIC + b"\x01\x00\x08http://a"
    v1 = TorrentSource(b"\x01" * 20, "dir/f.txt")
    assert _encode(v1) == MAGIC + b"\x02" + b"\x01" * 20 + b"\x00\x09dir/f.txt"
    v2 = TorrentSource(b"\x02" * 32, "f")
    assert _encode(v2) == MAGIC + b"\x03" + b"\x02" * 32 + b"\x00\x01f"
    assert (SourceKind.URL, SourceKind.BTIH, SourceKind.BTMH) == (1, 2, 3)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/a?b=c#d",
        "https://[::1]:8443/x",
        "https://example.com/" + "a" * (MAX_URL_BYTES - len("https://example.com/")),
    ],
)
def test_url_accepted(url: str) -> None:
    assert UrlSource(url).url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com", "absolute http"),
        ("example.com/a", "absolute http"),
        ("/relative", "absolute http"),
        ("http://", "absolute http"),
        ("http://exa mple.com", "printable ASCII"),
        ("http://example.com/\x7f", "printable ASCII"),
        ("http://example.com/\n", "printable ASCII"),
        ("https://example.com/\u00e9", "printable ASCII"),
        ("HTTP://example.com", "absolute http"),
        (
            "https://example.com/" + "a" * (MAX_URL_BYTES - len("https://example.com/") + 1),
            "longer than 8192 bytes",
        ),
    ],
)
def test_url_refused(url: str, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        UrlSource(url)


@pytest.mark.parametrize(
    "path", ["f", "a/b/c", "dir/file name.txt", "é/ü", "a" * MAX_TORRENT_PATH_BYTES]
)
def test_torrent_path_accepted(path: str) -> None:
    assert TorrentSource(bytes(20), path).path == path


@pytest.mark.parametrize(
    ("infohash", "path", "message"),
    [
        (bytes(19), "f", "20 \\(v1\\) or 32 \\(v2\\) bytes"),
        (bytes(21), "f", "20 \\(v1\\) or 32 \\(v2\\) bytes"),
        (bytes(33), "f", "20 \\(v1\\) or 32 \\(v2\\) bytes"),
        (bytes(20), "", "bad file path"),
        (bytes(20), "/abs", "bad file path"),
        (bytes(20), "a//b", "bad file path"),
        (bytes(20), "a/", "bad file path"),
        (bytes(20), ".", "bad file path"),
        (bytes(20), "a/../b", "bad file path"),
        (bytes(20), "a/./b", "bad file path"),
        (bytes(20), "a\x00b", "bad file path"),
        (bytes(20), "a" * (MAX_TORRENT_PATH_BYTES + 1), "longer than 4096 bytes"),
        (bytes(20), "é" * (MAX_TORRENT_PATH_BYTES // 2 + 1), "longer than 4096 bytes"),
    ],
)
def test_torrent_refused(infohash: bytes, path: str, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        TorrentSource(infohash, path)


def test_decoder_refuses_unknown_kind_and_limits() -> None:
    with pytest.raises(MalformedMessage, match="unknown source kind 4"):
        _decode(MAGIC + b"\x04")
    long_url = "http://" + "a" * MAX_URL_BYTES
    data = Writer(MAGIC).u8(SourceKind.URL).text16(long_url).getvalue()
    with pytest.raises(MalformedMessage, match="url is 8199 bytes, limit 8192"):
        _decode(data)
    data = Writer(MAGIC).u8(SourceKind.URL).text16("gopher://x").getvalue()
    with pytest.raises(MalformedMessage, match="absolute http"):
        _decode(data)
    data = Writer(MAGIC).u8(SourceKind.BTIH).fixed(bytes(20), 20).text16("../x").getvalue()
    with pytest.raises(MalformedMessage, match="bad file path"):
        _decode(data)
    data = Writer(MAGIC).u8(SourceKind.BTMH).fixed(bytes(20), 20).text16("x").getvalue()
    with pytest.raises(MalformedMessage, match="truncated"):
        _decode(data)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_decoder_only_raises_malformed(data: bytes) -> None:
    try:
        source = _decode(MAGIC + data)
    except MalformedMessage:
        return
    assert _encode(source) == MAGIC + data
