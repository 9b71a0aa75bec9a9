"""The origin fetcher against an in-process aiohttp origin on 127.0.0.1.

Every packet stays on loopback: names other than ``localhost`` are answered by a
fake upstream resolver, and tests that need a "public" origin declare 127.0.0.1
public by patching the fetcher's address check, so the guard's other rules (and
what redirects lead to) are still exercised for real.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Address, IPv6Address
from urllib.parse import quote

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from cdn_edge import address_policy
from cdn_edge.content import decoding as content_decoding
from cdn_edge.content import origin_fetch
from cdn_edge.content.origin_fetch import (
    BadOriginEncoding,
    BadUrl,
    BlockedAddress,
    OriginFetcher,
    OriginReset,
    OriginTimeout,
    OriginTooLarge,
    OriginTruncated,
    OriginUnreachable,
    TooManyRedirects,
)
from requester.errors import ServiceRefusal

MIB = 1 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = random.Random(7).randbytes(300_000)
TEXT = b"".join(b"line %d: %s\n" % (i, b"lorem ipsum " * (i % 9)) for i in range(20_000))


def compress(data: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "deflate-raw":
        raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return raw.compress(data) + raw.flush()
    if coding == "br":
        return bytes(brotli.compress(data, quality=5))
    if coding == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise AssertionError(coding)


@cache
def bomb(coding: str) -> bytes:
    """1 GiB of zeros compressed, made streaming: the GiB is never in memory."""
    zeros = bytes(MIB)
    out: list[bytes] = []
    if coding == "gzip":
        gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        out = [gz.compress(zeros) for _ in range(1024)] + [gz.flush()]
    elif coding == "br":
        br = brotli.Compressor(quality=5)
        out = [br.process(zeros) for _ in range(1024)] + [br.finish()]
    elif coding == "zstd":
        zs = zstandard.ZstdCompressor(level=3).compressobj()
        out = [zs.compress(zeros) for _ in range(1024)] + [zs.flush()]
    elif coding == "gzip, gzip":
        out = [gzip.compress(bomb("gzip"))]
    return b"".join(out)


@dataclass
class Origin:
    port: int
    hits: list[str] = field(default_factory=list)
    seen_headers: list[dict[str, str]] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def origin_app(origin: Origin) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin.hits.append(request.path_qs)
        origin.seen_headers.append(dict(request.headers))
        return await handler(request)

    @routes.get("/bytes/{n}")
    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=BODY[: int(request.match_info["n"])])

    @routes.get("/status/{code}")
    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), body=b"nope")

    @routes.get("/coded")
    async def coded(request: web.Request) -> web.Response:
        codings = request.query["c"].split(",")
        body = TEXT
        for coding in codings:
            body = compress(body, coding)
        header = ", ".join(c.replace("deflate-raw", "deflate") for c in codings)
        return web.Response(body=body, headers={"Content-Encoding": header})

    @routes.get("/raw")
    async def raw(request: web.Request) -> web.Response:
        """The body given in hex, with the Content-Encoding given."""
        body = bytes.fromhex(request.query.get("hex", ""))
        return web.Response(body=body, headers={"Content-Encoding": request.query["c"]})

    @routes.get("/cut")
    async def cut(request: web.Request) -> web.Response:
        """TEXT compressed, minus its last ``drop`` bytes."""
        coding = request.query["c"]
        body = compress(TEXT, coding)[: -int(request.query["drop"])]
        return web.Response(body=body, headers={"Content-Encoding": coding})

    @routes.get("/bomb")
    async def serve_bomb(request: web.Request) -> web.StreamResponse:
        coding = request.query["c"]
        resp = web.StreamResponse(headers={"Content-Encoding": coding})
        await resp.prepare(request)
        data = memoryview(bomb(coding))
        try:
            for start in range(0, len(data), 64 * 1024):
                await resp.write(data[start : start + 64 * 1024])
        except (ConnectionError, RuntimeError):
            pass  # the fetcher hung up, as it should
        return resp

    @routes.get("/endless")
    async def endless(request: web.Request) -> web.StreamResponse:
        """An identity body without Content-Length that never ends."""
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = bytes(64 * 1024)
        try:
            while True:
                await resp.write(chunk)
        except (ConnectionError, RuntimeError):
            return resp

    @routes.get("/declares-huge")
    async def declares_huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 10 * 1024 * MIB
        await resp.prepare(request)
        await resp.write(b"0123456789")
        await asyncio.sleep(30)
        return resp

    @routes.get("/slow-body")
    async def slow_body(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b"x" * 10)
        await asyncio.sleep(30)
        return resp

    @routes.get("/half/{framing}/{end}")
    async def half(request: web.Request) -> web.StreamResponse:
        """100 KB promised (Content-Length or chunked), 50 KB sent, then FIN or RST."""
        resp = web.StreamResponse()
        if request.match_info["framing"] == "length":
            resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(BODY[:50_000])
        await asyncio.sleep(0.1)
        assert request.transport is not None
        if request.match_info["end"] == "rst":
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.transport.close()
        raise asyncio.CancelledError

    @routes.get("/slow-head")
    async def slow_head(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    @routes.get("/big-header")
    async def big_header(request: web.Request) -> web.Response:
        return web.Response(headers={"X-Big": "a" * 10_000})

    @routes.get("/cookie")
    async def cookie(request: web.Request) -> web.Response:
        resp = web.Response(text="have one")
        resp.set_cookie("session", "secret")
        return resp

    @routes.get("/redirect/{n}")
    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        status = int(request.query.get("status", "302"))
        target = f"/redirect/{n - 1}?status={status}" if n > 1 else "/bytes/1000"
        return web.Response(status=status, headers={"Location": target})

    @routes.get("/loop/{side}")
    async def loop(request: web.Request) -> web.Response:
        other = "b" if request.match_info["side"] == "a" else "a"
        return web.Response(status=302, headers={"Location": f"/loop/{other}"})

    @routes.get("/to")
    async def to(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["location"]})

    @routes.get("/no-location")
    async def no_location(request: web.Request) -> web.Response:
        return web.Response(status=302, text="moved, but not saying where")

    app = web.Application(middlewares=[record])
    app.add_routes(routes)
    return app


@pytest.fixture
async def local_origin() -> AsyncIterator[Origin]:
    origin = Origin(port=0)
    runner = web.AppRunner(origin_app(origin), shutdown_timeout=0.2, keepalive_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin.port = runner.addresses[0][1]
    yield origin
    await runner.cleanup()


class FakeResolver(AbstractResolver):
    """Answers from a table, so no test sends a DNS query; unknown names do not exist."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in self.names[host]
        ]

    async def close(self) -> None:
        pass


def treat_as_public(monkeypatch: pytest.MonkeyPatch, *public: str) -> list[str]:
    """Make the fetcher's connect-time checks take ``public`` as public; returns what was checked.

    Only the fetcher's resolver and peer checks are patched: URL checks (IP literals,
    ports) still use the real rules.
    """
    checked: list[str] = []

    def check(ip: str | IPv4Address | IPv6Address, *, allow_private: bool) -> None:
        checked.append(str(ip))
        if str(ip) not in public:
            address_policy.check_address(ip, allow_private=allow_private)

    monkeypatch.setattr(origin_fetch, "check_address", check)
    return checked


async def read_all(
    fetcher: OriginFetcher, url: str, headers: dict[str, str] | None = None
) -> tuple[origin_fetch.OriginResponse, bytes]:
    async with fetcher.fetch(url, headers=headers) as resp:
        return resp, b"".join([piece async for piece in resp.body])


# --- bytes arrive exact and decoded ---


async def test_plain_body_is_byte_exact(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        resp, body = await read_all(fetcher, local_origin.url("/bytes/300000"))
    assert resp.status == 200
    assert body == BODY
    assert str(resp.url) == local_origin.url("/bytes/300000")
    assert ("Content-Length", "300000") in resp.headers


async def test_origin_status_passes_through(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        resp, body = await read_all(fetcher, local_origin.url("/status/404"))
    assert (resp.status, body) == (404, b"nope")


@pytest.mark.parametrize(
    "codings",
    ["gzip", "deflate", "deflate-raw", "br", "zstd", "gzip,br", "br,zstd,deflate", "zstd,gzip"],
)
async def test_content_codings_are_decoded(local_origin: Origin, codings: str) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        resp, body = await read_all(fetcher, local_origin.url(f"/coded?c={codings}"))
    assert body == TEXT
    names = {name.lower() for name, _ in resp.headers}
    assert "content-encoding" not in names
    assert "content-length" not in names, "it described the encoded bytes"
    assert local_origin.seen_headers[0]["Accept-Encoding"] == "gzip, deflate, br, zstd"


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        # mtime=0: the bytes are in the test ids, which every xdist worker must agree on.
        ("gzip", gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)),
        ("zstd", zstandard.ZstdCompressor().compress(b"first ") + compress(b"second", "zstd")),
        ("gzip", gzip.compress(b"first second", mtime=0) + b"\0\0trailing junk"),
        ("identity", b"first second"),
        ("gzip", b""),  # an empty body with a coding (some servers do that on 204/304)
    ],
    ids=["gzip-members", "zstd-frames", "gzip-trailing-junk", "identity", "gzip-empty"],
)
async def test_members_frames_and_edge_cases(
    local_origin: Origin, coding: str, data: bytes
) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        _, body = await read_all(fetcher, local_origin.url(f"/raw?c={coding}&hex={data.hex()}"))
    assert body == (b"first second" if data else b"")


# --- compression bombs and size caps ---


@pytest.mark.parametrize(
    ("coding", "peak_mib"),
    # Brotli 1.1 cannot cap one call's output: a whole meta-block (up to 16 MiB) comes out.
    [("gzip", 8), ("zstd", 8), ("br", 40), ("gzip, gzip", 8)],
)
async def test_compression_bomb_is_refused_in_bounded_memory(
    local_origin: Origin, coding: str, peak_mib: int
) -> None:
    cap = 64 * MIB
    bomb(coding)  # made (and cached) before measuring
    got = 0
    tracemalloc.start()
    try:
        async with OriginFetcher(allow_private=True, max_body=cap) as fetcher:
            with pytest.raises(OriginTooLarge, match="refused, not expanded"):
                async with fetcher.fetch(local_origin.url(f"/bomb?c={quote(coding)}")) as resp:
                    async for piece in resp.body:
                        assert len(piece) <= content_decoding.READ_SIZE
                        got += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got <= cap
    assert peak < peak_mib * MIB, f"peak {peak / MIB:.1f} MiB while decoding a 1 GiB bomb"


async def test_declared_length_over_the_cap_is_refused_before_reading(local_origin: Origin) -> None:
    started = time.monotonic()
    async with OriginFetcher(allow_private=True, max_body=MIB) as fetcher:
        with pytest.raises(OriginTooLarge, match="declares 10737418240 bytes"):
            async with fetcher.fetch(local_origin.url("/declares-huge")):
                raise AssertionError("must be refused before the body is read")
    assert time.monotonic() - started < 5


async def test_endless_identity_body_is_cut_at_the_cap(local_origin: Origin) -> None:
    got = 0
    async with OriginFetcher(allow_private=True, max_body=3 * MIB) as fetcher:
        with pytest.raises(OriginTooLarge, match="sent over 3145728 bytes"):
            async with fetcher.fetch(local_origin.url("/endless")) as resp:
                async for piece in resp.body:
                    got += len(piece)
    assert got <= 3 * MIB


async def test_oversized_header_is_refused(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(OriginTooLarge, match="header line"):
            await read_all(fetcher, local_origin.url("/big-header"))


# --- bad encodings ---


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        ("gzip", b"this is not gzip at all"),
        ("deflate", b"\x78\x9c" + b"\xff" * 20),
        ("br", b"\xff" * 32),
        ("zstd", b"\x28\xb5\x2f\xfd" + b"\xff" * 20),
        ("zstd", compress(b"abc", "zstd") + b"junk after the frame"),
        ("br", compress(b"abc", "br") + b"junk after the stream"),
        ("deflate", b"x"),
    ],
)
async def test_corrupt_or_truncated_bodies_are_refused(
    local_origin: Origin, coding: str, data: bytes
) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(BadOriginEncoding) as info:
            await read_all(fetcher, local_origin.url(f"/raw?c={coding}&hex={data.hex()}"))
    assert (info.value.status, info.value.code) == (502, "bad_content_encoding")


@pytest.mark.parametrize(
    ("coding", "drop"), [("gzip", 100), ("gzip", 1), ("deflate", 5000), ("br", 10), ("zstd", 10)]
)
async def test_truncated_bodies_are_refused(local_origin: Origin, coding: str, drop: int) -> None:
    got = b""
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(BadOriginEncoding, match="ends"):
            async with fetcher.fetch(local_origin.url(f"/cut?c={coding}&drop={drop}")) as resp:
                async for piece in resp.body:
                    got += piece
    assert TEXT.startswith(got)


@pytest.mark.parametrize("header", ["compress", "gzip, snappy", "gzip, gzip, gzip, gzip"])
async def test_unknown_or_too_deep_codings_are_refused_up_front(
    local_origin: Origin, header: str
) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(BadOriginEncoding):
            async with fetcher.fetch(local_origin.url(f"/raw?c={quote(header)}&hex=00")):
                raise AssertionError("refused before the body")


# --- redirects ---


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_chain_of_three_is_followed(local_origin: Origin, status: int) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        resp, body = await read_all(fetcher, local_origin.url(f"/redirect/3?status={status}"))
    assert (resp.status, body) == (200, BODY[:1000])
    assert str(resp.url) == local_origin.url("/bytes/1000")
    assert len(local_origin.hits) == 4


async def test_too_many_redirects(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True, max_redirects=5) as fetcher:
        await read_all(fetcher, local_origin.url("/redirect/5"))
        with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
            await read_all(fetcher, local_origin.url("/redirect/6"))


async def test_redirect_loop(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(TooManyRedirects, match="loop"):
            await read_all(fetcher, local_origin.url("/loop/a"))
    assert len(local_origin.hits) == 2


async def test_redirect_without_location_is_the_answer(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        resp, body = await read_all(fetcher, local_origin.url("/no-location"))
    assert (resp.status, body) == (302, b"moved, but not saying where")


@pytest.mark.parametrize(
    ("location", "error", "why"),
    [
        ("file:///etc/passwd", BadUrl, "scheme 'file'"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", BadUrl, "scheme 'gopher'"),
        ("http://user:pw@127.0.0.1/", BadUrl, "user info"),
        ("http://0.0.0.0:{port}/bytes/10", BlockedAddress, "unspecified"),
        ("http://[ff02::1]:{port}/", BlockedAddress, "multicast"),
        ("http://[::ffff:0.0.0.0]:{port}/", BlockedAddress, "unspecified"),
    ],
)
async def test_every_redirect_target_is_checked_again(
    local_origin: Origin, location: str, error: type[ServiceRefusal], why: str
) -> None:
    target = quote(location.format(port=local_origin.port), safe="")
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(error, match=why):
            await read_all(fetcher, local_origin.url(f"/to?location={target}"))
    assert len(local_origin.hits) == 1


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://localhost:{port}/bytes/10", "resolves to loopback address ::1"),
        ("http://intranet.test:{port}/bytes/10", "resolves to private address 10.1.2.3"),
        ("http://127.0.0.1:{port}/bytes/10", "loopback"),
        ("http://2130706433:{port}/bytes/10", "loopback"),
        ("http://[::1]:{port}/bytes/10", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://origin.test:6379/", "Redis"),
        ("http://origin.test:22/", "well-known port"),
    ],
)
async def test_redirect_from_a_public_origin_to_a_private_one_is_refused(
    local_origin: Origin, monkeypatch: pytest.MonkeyPatch, location: str, why: str
) -> None:
    treat_as_public(monkeypatch, "127.0.0.1")
    resolver = FakeResolver(
        {
            "origin.test": ["127.0.0.1"],
            "localhost": ["127.0.0.1", "::1"],
            "intranet.test": ["10.1.2.3"],
        }
    )
    target = quote(location.format(port=local_origin.port), safe="")
    async with OriginFetcher(allow_private=False, resolver=resolver) as fetcher:
        _, body = await read_all(fetcher, local_origin.url("/bytes/10", host="origin.test"))
        assert body == BODY[:10], "the simulated public origin itself is reachable"
        with pytest.raises(BlockedAddress, match=why):
            await read_all(fetcher, local_origin.url(f"/to?location={target}", "origin.test"))
    assert len(local_origin.hits) == 2


async def test_credentials_are_not_carried_to_another_origin(
    local_origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    treat_as_public(monkeypatch, "127.0.0.1")
    resolver = FakeResolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    target = quote(local_origin.url("/bytes/10", host="b.test"), safe="")
    headers = {
        "Authorization": "Bearer x",
        "Accept": "text/html",
        "Host": "evil.test",
        "Accept-Encoding": "compress",
    }
    async with OriginFetcher(resolver=resolver) as fetcher:
        await read_all(fetcher, local_origin.url(f"/to?location={target}", "a.test"), headers)
    first, second = local_origin.seen_headers
    assert first["Authorization"] == "Bearer x"
    assert first["Host"] == f"a.test:{local_origin.port}"
    assert first["Accept-Encoding"] == "gzip, deflate, br, zstd", "only what we can decode"
    assert "Authorization" not in second
    assert second["Accept"] == "text/html"


# --- the SSRF guard on names, literals and connections ---


async def test_localhost_is_refused_by_what_it_resolves_to(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=False) as fetcher:
        with pytest.raises(BlockedAddress) as info:
            await read_all(fetcher, local_origin.url("/bytes/10", host="localhost"))
    assert "host localhost is refused: resolves to loopback address" in info.value.message
    assert info.value.status == 403
    assert local_origin.hits == []


async def test_the_same_fetch_passes_when_private_origins_are_allowed(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        _, body = await read_all(fetcher, local_origin.url("/bytes/10", host="localhost"))
    assert body == BODY[:10]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0x7f.1"])
async def test_loopback_literals_are_refused(local_origin: Origin, host: str) -> None:
    async with OriginFetcher(allow_private=False) as fetcher:
        with pytest.raises(BlockedAddress, match="loopback"):
            await read_all(fetcher, local_origin.url("/bytes/10", host=host))
    assert local_origin.hits == []


async def test_guarded_resolver_is_what_aiohttp_uses(local_origin: Origin) -> None:
    resolver = FakeResolver({"origin.test": ["127.0.0.1"]})
    async with OriginFetcher(allow_private=False, resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress, match=r"host origin\.test is refused"):
            await read_all(fetcher, local_origin.url("/bytes/10", host="origin.test"))
    assert resolver.calls == ["origin.test"]
    assert local_origin.hits == []


async def test_a_name_is_refused_if_any_of_its_addresses_is(
    local_origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    treat_as_public(monkeypatch, "127.0.0.1")
    resolver = FakeResolver({"dual.test": ["127.0.0.1", "::1"], "v4.test": ["127.0.0.1"]})
    async with OriginFetcher(resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress, match="loopback address ::1"):
            await read_all(fetcher, local_origin.url("/bytes/10", host="dual.test"))
        assert local_origin.hits == []
        _, body = await read_all(fetcher, local_origin.url("/bytes/10", host="v4.test"))
    assert body == BODY[:10]


async def test_resolved_and_peer_addresses_are_both_checked(
    local_origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = treat_as_public(monkeypatch, "127.0.0.1")
    resolver = FakeResolver({"origin.test": ["127.0.0.1"]})
    async with OriginFetcher(resolver=resolver) as fetcher:
        await read_all(fetcher, local_origin.url("/bytes/10", host="origin.test"))
    assert checked == ["127.0.0.1", "127.0.0.1"], "once from the resolver, once the peer"
    assert resolver.calls == ["origin.test"]


async def test_peer_check_stops_a_connection_the_resolver_let_through(
    local_origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if the name changed its answer between the check and the connect."""
    answers = iter([None])

    def first_time_lenient(ip: str | IPv4Address | IPv6Address, *, allow_private: bool) -> None:
        if next(answers, "strict") is None:
            return
        address_policy.check_address(ip, allow_private=allow_private)

    monkeypatch.setattr(origin_fetch, "check_address", first_time_lenient)
    resolver = FakeResolver({"rebind.test": ["127.0.0.1"]})
    async with OriginFetcher(resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress, match="loopback"):
            await read_all(fetcher, local_origin.url("/bytes/10", host="rebind.test"))
    assert local_origin.hits == [], "no request byte reached the origin"


async def test_denied_port_is_refused_before_resolving() -> None:
    resolver = FakeResolver({})
    async with OriginFetcher(resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress, match="port 11211"):
            await read_all(fetcher, "http://cache.test:11211/")
    assert resolver.calls == []


async def test_bad_url_is_refused() -> None:
    async with OriginFetcher() as fetcher:
        with pytest.raises(BadUrl):
            await read_all(fetcher, "ftp://example.org/")


async def test_cookies_are_never_stored(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True) as fetcher:
        await read_all(fetcher, local_origin.url("/cookie"))
        await read_all(fetcher, local_origin.url("/bytes/1"))
    assert "Cookie" not in local_origin.seen_headers[1]


# --- unreachable and slow origins ---


async def test_unknown_name_is_unreachable() -> None:
    async with OriginFetcher(resolver=FakeResolver({})) as fetcher:
        with pytest.raises(OriginUnreachable, match=r"cannot resolve nowhere\.test") as info:
            await read_all(fetcher, "http://nowhere.test/")
    assert info.value.status == 502


async def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(OriginUnreachable, match="cannot connect"):
            await read_all(fetcher, f"http://127.0.0.1:{port}/")


async def test_stalled_body_hits_the_read_timeout(local_origin: Origin) -> None:
    async with (
        OriginFetcher(allow_private=True, read_timeout=0.3) as fetcher,
        fetcher.fetch(local_origin.url("/slow-body")) as resp,
    ):
        with pytest.raises(OriginTimeout) as info:
            async for _ in resp.body:
                pass
    assert (info.value.status, info.value.code) == (504, "origin_timeout")


async def test_stalled_head_hits_the_read_timeout(local_origin: Origin) -> None:
    async with OriginFetcher(allow_private=True, read_timeout=0.3) as fetcher:
        with pytest.raises(OriginTimeout):
            await read_all(fetcher, local_origin.url("/slow-head"))


async def test_total_timeout_bounds_a_trickle(local_origin: Origin) -> None:
    started = time.monotonic()
    async with OriginFetcher(allow_private=True, read_timeout=10, total_timeout=0.5) as fetcher:
        with pytest.raises(OriginTimeout):
            await read_all(fetcher, local_origin.url("/slow-body"))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("path", "error", "detail"),
    [
        ("/half/length/fin", OriginTruncated,
         "closed the connection before the body's end: Not enough data to satisfy content "
         "length header (received 50000 of 100000 bytes)"),
        ("/half/chunked/fin", OriginTruncated, "closed the connection before the body's end"),
        ("/half/length/rst", OriginReset, "reset the connection in the middle of the body"),
        ("/half/chunked/rst", OriginReset, "reset the connection in the middle of the body"),
    ],
)  # fmt: skip
async def test_a_body_cut_short_is_refused_by_how_it_ended(
    local_origin: Origin, path: str, error: type[ServiceRefusal], detail: str
) -> None:
    got = b""
    async with OriginFetcher(allow_private=True) as fetcher:
        with pytest.raises(error) as info:
            async with fetcher.fetch(local_origin.url(path)) as resp:
                async for piece in resp.body:
                    got += piece
    assert info.value.message.startswith(f"origin 127.0.0.1:{local_origin.port} {detail}")
    assert got == BODY[:50_000]


# --- the API's contract ---


def test_fetch_needs_async_with() -> None:
    fetcher = OriginFetcher()

    async def use() -> None:
        async with fetcher.fetch("http://example.org/"):
            pass

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(use())


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadUrl, 400, "bad_url"),
        (BlockedAddress, 403, "blocked_address"),
        (OriginUnreachable, 502, "origin_unreachable"),
        (OriginTruncated, 502, "origin_truncated"),
        (OriginReset, 502, "origin_reset"),
        (OriginTooLarge, 502, "origin_too_large"),
        (TooManyRedirects, 502, "too_many_redirects"),
        (BadOriginEncoding, 502, "bad_content_encoding"),
        (OriginTimeout, 504, "origin_timeout"),
    ],
)
def test_refusal_statuses(error: type[ServiceRefusal], status: int, code: str) -> None:
    assert issubclass(error, ServiceRefusal)
    assert (error.status, error.code) == (status, code)


def test_exported_names() -> None:
    assert sorted(origin_fetch.__all__) == [
        "BadOriginEncoding",
        "BadUrl",
        "BlockedAddress",
        "OriginFetcher",
        "OriginReset",
        "OriginResponse",
        "OriginTimeout",
        "OriginTooLarge",
        "OriginTruncated",
        "OriginUnreachable",
        "TooManyRedirects",
    ]
