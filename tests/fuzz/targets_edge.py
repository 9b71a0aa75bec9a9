"""Fuzz targets for what an edge parses from requesters and origins before any I/O.

The pure functions behind each endpoint and header: the chunk and tunnel paths and
their payment headers, a fetch's forwarded headers, magnet links, infohashes and
.torrent files (bencode, decoded by libtorrent under our limits), CONNECT heads,
origin URLs (the SSRF guard), and the origin response headers that go into a head.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import libtorrent as lt
from aiohttp.test_utils import make_mocked_request

from cdn_edge import routes_chunks, routes_content
from cdn_edge.address_policy import check_origin_url, parse_origin_url
from cdn_edge.content.http_cache import policy
from cdn_edge.content.manifest_headers import manifest_headers, size_of
from cdn_edge.content.range_pass import single_range
from cdn_edge.torrent.sources import parse_source, parse_torrent_file
from cdn_edge.tunnel import routes as routes_tunnel
from cdn_edge.tunnel.connect_request import check_target, parse_connect, parse_tunnel_id
from cdn_edge.wire_encoding import accepts_zstd, compressible
from requester.errors import Refusal
from requester.protocol import NodeKey, UrlSource, b64url_decode
from requester.protocol.manifest import ManifestHead
from requester.protocol.voucher import VOUCHER_SIZE
from tests.fuzz import seeds
from tests.fuzz.target import Fields, OracleViolation, target

TUNNEL_PARTS_TEST = (
    "tests/edge/tunnel/test_parts.py::test_no_input_raises_anything_but_a_protocol_error"
)
V1 = bytes(range(1, 21)).hex()
V2 = bytes(range(32, 64)).hex()
_KEY = NodeKey(bytes(32))


def _lines(*parts: str) -> Iterator[bytes]:
    for part in parts:
        yield part.encode()


def _parts(data: bytes, count: int) -> list[str]:
    """The input's first ``count`` lines, as aiohttp would hand over header text."""
    return [*data.decode("utf-8", "surrogateescape").split("\n"), *[""] * count][:count]


@target(
    "chunk_request",
    seeds=lambda: _lines(
        f"{'ab' * 32}\n12\n{seeds.voucher_headers()[0]}\n{'cd' * 32}",
        f"{'AB' * 32}\n0\n\n",
        "xyz\n\u00b2\n=\n",
    ),
)
def chunk_request(data: bytes) -> None:
    """GET /v1/chunk/{content_id}/{index} with Atlas-Voucher and Atlas-Channel: the path
    parser and the payment headers as the route reads them (lines of the input)."""
    cid, index, voucher, channel = _parts(data, 4)
    request = make_mocked_request("GET", "/", match_info={"content_id": cid, "index": index})
    with contextlib.suppress(Refusal):
        content_id, number = routes_chunks._parse(request)
        assert len(content_id) == 32 and number >= 0
    with contextlib.suppress(Refusal):
        b64url_decode(voucher, VOUCHER_SIZE, "Atlas-Voucher")
    routes_chunks._hex32(channel, "Atlas-Channel")


@target("edge_paths", seeds=lambda: _lines(f"{'ab' * 32}\n{'0f' * 16}\n16", "x\nX\n\u00b2"))
def edge_paths(data: bytes) -> None:
    """/v1/content/{id}, /v1/providers/{id}, /v1/tunnels/{id}[/pay?units=N]."""
    cid, tunnel, units = _parts(data, 3)
    request = make_mocked_request("GET", "/", match_info={"content_id": cid})
    with contextlib.suppress(Refusal):
        assert len(routes_content.content_id_from(request)) == 32
    with contextlib.suppress(Refusal):
        parse_tunnel_id(tunnel)
    assert 1 <= routes_tunnel._units(units) <= routes_tunnel.MAX_UNITS_PER_PAYMENT


@target(
    "fetch_body",
    seeds=lambda: _lines(
        json.dumps({"url": "https://example.com/a", "headers": {"accept": "text/html"}}),
        json.dumps({"url": f"magnet:?xt=urn:btih:{V1}&x.pe=127.0.0.1:6881", "file": "a/b"}),
        json.dumps({"url": V2, "peers": ["[::1]:1"]}),
    ),
)
def fetch_body(data: bytes) -> None:
    """POST /v1/fetch's body up to the point the edge would go to the network: the URL
    (http, magnet or infohash), forwarded headers, peers."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return  # read_json's 400
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        return  # the route's 400
    url = body["url"]
    if routes_content.is_torrent(url):
        parse_source(url)
        return
    if url.isascii():
        with contextlib.suppress(Refusal):
            UrlSource(url)
    routes_content._request_headers(body.get("headers", {}))


@target(
    "magnet",
    seeds=lambda: _lines(
        f"magnet:?xt=urn:btih:{V1}&dn=a+b&x.pe=127.0.0.1:6881&x.pe=[::1]:2&tr=udp://t.example:1",
        f"magnet:?xt.1=urn:btih:{V1}&xt.2=urn:btmh:1220{V2}",
        V1,
        V2,
    ),
)
def magnet(data: bytes) -> None:
    """parse_source: a magnet link or a bare infohash."""
    parse_source(data.decode("utf-8", "surrogateescape"))


@cache
def _torrent_seeds() -> list[bytes]:
    """A small multi-file torrent of each kind (v1, v2, hybrid), and a hand-written one."""
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "pack" / "dir").mkdir(parents=True)
        (base / "pack" / "a.txt").write_bytes(bytes(40000))
        (base / "pack" / "dir" / "b.bin").write_bytes(b"b" * 1000)
        for flags in (lt.create_torrent.v1_only, lt.create_torrent.v2_only, 0):
            creator = lt.create_torrent(lt.list_files(str(base / "pack")), 16384, flags)
            lt.set_piece_hashes(creator, str(base))
            made.append(bytes(lt.bencode(creator.generate())))
    hand = b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:" + bytes(20) + b"ee"
    return [*made, hand]


@target("torrent_file", seeds=lambda: iter(_torrent_seeds()))
def torrent_file(data: bytes) -> None:
    """parse_torrent_file: an uploaded .torrent (bencode), decoded under our limits."""
    parse_torrent_file(data)


@target(
    "connect_head",
    seeds=lambda: _lines(
        f"CONNECT example.com:443 HTTP/1.1\r\nAtlas-Tunnel: {'0f' * 16}\r\n"
        f"Atlas-Voucher: {seeds.voucher_headers()[0]}\r\n\r\n",
        f"CONNECT [::1]:8443 HTTP/1.1\r\nHost: x\r\nAtlas-Tunnel: {'0f' * 16}\r\n\r\n",
    ),
    covered_by=TUNNEL_PARTS_TEST,
)
def connect_head(data: bytes) -> None:
    """parse_connect and the SSRF guard: the tunnel port's request head."""
    check_target(parse_connect(data), allow_private=False)


@target(
    "origin_url",
    seeds=lambda: _lines(
        "https://example.com/a?b=c",
        "http://127.1/",
        "http://[::ffff:10.0.0.1]:8080/",
        "http://0x7f.1/",
        "https://user@example.com/",
        "http://a.example:6379/",
    ),
    covered_by="tests/edge/test_address_policy.py (hypothesis, any text)",
)
def origin_url(data: bytes) -> None:
    """parse_origin_url and check_origin_url: every URL and redirect an edge would fetch."""
    text = data.decode("utf-8", "surrogateescape")
    check_origin_url(parse_origin_url(text), allow_private=data[:1] == b"p")


def _header_seeds() -> Iterator[bytes]:
    pairs = [
        ("Cache-Control", 'public, max-age=60, s-maxage="5"'),
        ("ETag", '"x"'),
        ("Vary", "Accept-Language, *"),
        ("Content-Range", "bytes 0-9/100"),
        ("Expires", "Mon, 02 Nov 2026 10:00:00 GMT"),
        ("Content-Length", "100"),
        ("Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT"),
        ("Set-Cookie", "a=b"),
    ]
    for status in (b"\x00\xc8", b"\x00\xce"):
        out = status
        for name, value in pairs:
            out += len(name).to_bytes(2, "big") + name.encode()
            out += len(value).to_bytes(2, "big") + value.encode()
        yield out


@target("origin_headers", seeds=_header_seeds, allowed=())
def origin_headers(data: bytes) -> None:
    """An origin's status and headers: cache policy, size, and what goes into a head.
    Never raises; what manifest_headers keeps must make a head the edge can sign."""
    fields = Fields(data)
    status = 100 + fields.u16() % 500
    headers: list[tuple[str, str]] = []
    while len(headers) < 80:
        name, value = fields.text(200), fields.text(9000)
        if not name:
            break
        headers.append((name, value))
    policy(status, {"range": "bytes=0-1"}, headers, 1_700_000_000.0)
    size_of(headers)
    kept = manifest_headers(headers, status)
    try:
        ManifestHead.create(
            _KEY, source=UrlSource("https://o.example/"), status=status, headers=kept, created_at=0
        )
    except Exception as exc:
        raise OracleViolation(f"manifest_headers kept headers no head can carry: {exc}") from exc


@target(
    "request_headers",
    seeds=lambda: _lines(
        "bytes=0-99\ngzip, zstd;q=0.5\ntext/html; charset=utf-8",
        "bytes=-5\nzstd;q=0\n",
    ),
    allowed=(),
)
def request_headers(data: bytes) -> None:
    """Range (the edge's single_range), Accept-Encoding and Content-Type: never raise."""
    rng, accept, ctype = _parts(data, 3)
    compact = single_range({"Range": rng})
    if compact is not None and not compact.startswith("bytes="):
        raise OracleViolation(f"single_range passed {compact!r}")
    accepts_zstd(accept)
    compressible(ctype)
