"""Fetching origin URLs for requesters: behind an SSRF guard, in bounded memory and time.

Every refusal is a :class:`ProtocolError` that the problem middleware turns into JSON::

    ProtocolError
    ├── BadUrl               400 bad_url               not an http(s) URL we fetch
    ├── BlockedAddress       403 blocked_address       SSRF guard: address or port off limits
    ├── OriginUnreachable    502 origin_unreachable    DNS failure, refused, reset, bad HTTP
    ├── OriginTooLarge       502 origin_too_large      body (or headers) over the cap
    ├── TooManyRedirects     502 too_many_redirects    too long a chain, or a loop
    ├── BadOriginEncoding    502 bad_content_encoding  corrupt or unknown Content-Encoding
    └── OriginTimeout        504 origin_timeout        connect, read or total time exceeded

The guard (rules in :mod:`cdn_edge.address_policy`) runs at every hop of a
redirect chain: the URL and any IP-literal host are checked before connecting;
a host name is resolved once per connection attempt by a resolver that checks
every address it returns before aiohttp may connect to any of them (so a name
cannot answer "public" to a check and "private" to the connect); and the peer
of each established connection is checked again before a request byte is sent.
No proxy from the environment is used, since it would hide the origin's address.

Bodies are streamed and decoded incrementally with every layer's output capped,
so a compression bomb is refused after ``max_body`` bytes instead of expanded.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import brotli  # type: ignore[import-untyped]
import zstandard
from aiohttp import ClientRequest, ClientResponse, hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import Connection
from aiohttp.http_exceptions import LineTooLong
from aiohttp.tracing import Trace
from yarl import URL

from cdn_edge.address_policy import (
    BadUrl,
    BlockedAddress,
    check_address,
    check_origin_url,
    parse_origin_url,
)
from requester.protocol import ProtocolError

__all__ = [
    "BadOriginEncoding",
    "BadUrl",
    "BlockedAddress",
    "OriginFetcher",
    "OriginResponse",
    "OriginTimeout",
    "OriginTooLarge",
    "OriginUnreachable",
    "TooManyRedirects",
]

DEFAULT_MAX_BODY = 1 << 30
READ_SIZE = 64 * 1024
"""Largest network read, and largest decoded piece handed to the caller."""
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
MAX_CODINGS = 3
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NO_BODY_STATUSES = frozenset({204, 304})
DROPPED_REQUEST_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
     "trailer", "transfer-encoding", "upgrade", "content-length", "expect", "accept-encoding"}
)  # fmt: skip
"""Framing and hop-by-hop headers are ours to set; Accept-Encoding lists what we decode."""
CROSS_ORIGIN_DROPPED = frozenset({"authorization", "cookie"})
BROTLI_SLICE = 8
"""Brotli 1.1 cannot cap one call's output; 8 input bytes expand to at most ~16 MiB."""
ZSTD_SLICE = 64
"""A zstd block is at most 128 KiB out for at least 4 bytes in: ~2 MiB per 64 bytes."""
ZSTD_MAX_WINDOW = 8 << 20
"""RFC 9659: HTTP zstd senders keep the window at 8 MiB; a bigger one would cost memory."""
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class OriginUnreachable(ProtocolError):
    status = 502
    code = "origin_unreachable"


class OriginTimeout(ProtocolError):
    status = 504
    code = "origin_timeout"


class OriginTooLarge(ProtocolError):
    status = 502
    code = "origin_too_large"


class TooManyRedirects(ProtocolError):
    status = 502
    code = "too_many_redirects"


class BadOriginEncoding(ProtocolError):
    status = 502
    code = "bad_content_encoding"


@dataclass(frozen=True)
class OriginResponse:
    """The final response of a fetch; ``body`` yields identity-decoded bytes.

    When the body was decoded, ``headers`` no longer carry Content-Encoding and
    Content-Length, which described the encoded bytes.
    """

    status: int
    headers: list[tuple[str, str]]
    url: URL
    body: AsyncIterator[bytes]


class OriginFetcher:
    """One guarded HTTP client for all origin fetches of an edge; use it with ``async with``.

    ``connect_timeout`` and ``read_timeout`` bound each connect and each socket read, so
    a stalled origin is dropped early; ``total_timeout`` bounds a whole fetch, redirects
    and body included, so a trickling origin cannot hold a transfer forever.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        max_body: int = DEFAULT_MAX_BODY,
        max_redirects: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        total_timeout: float = 300.0,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """``resolver`` is the upstream resolver the guard wraps (aiohttp's default if None)."""
        self._allow_private = allow_private
        self._max_body = max_body
        self._max_redirects = max_redirects
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._upstream = resolver
        self._own_resolver: AbstractResolver | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OriginFetcher:
        upstream = self._upstream
        if upstream is None:
            upstream = self._own_resolver = aiohttp.DefaultResolver()
        connector = _GuardedConnector(
            self._allow_private,
            resolver=_GuardedResolver(upstream, self._allow_private),
            use_dns_cache=False,  # resolve once per connection attempt, checked every time
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout(self._total_timeout),
            trust_env=False,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # a shared cache must not carry cookies
            read_bufsize=READ_SIZE,
            max_line_size=MAX_LINE_SIZE,
            max_field_size=MAX_FIELD_SIZE,
            max_headers=MAX_HEADERS,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_resolver is not None:
            await self._own_resolver.close()
            self._own_resolver = None

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=total,
            connect=self._connect_timeout,
            sock_connect=self._connect_timeout,
            sock_read=self._read_timeout,
        )

    @asynccontextmanager
    async def fetch(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[OriginResponse]:
        """GET ``url``, following redirects; the response is valid inside the ``async with``.

        Raises the errors in the module docstring; body errors surface while iterating.
        """
        if self._session is None:
            raise RuntimeError("OriginFetcher.fetch used outside 'async with'")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total_timeout
        sent = _request_headers(headers or {})
        target = parse_origin_url(url)
        seen = {target}
        for _hop in range(self._max_redirects + 1):
            check_origin_url(target, allow_private=self._allow_private)
            resp = await self._send(target, sent, deadline - loop.time())
            try:
                location = _redirect_location(resp)
                if location is None:
                    codings = _content_codings(resp)
                    _check_declared_length(resp, self._max_body)
                    body = self._body(resp, codings, target)
                    try:
                        yield OriginResponse(
                            resp.status, _response_headers(resp, codings), target, body
                        )
                    finally:
                        await body.aclose()
                    return
            finally:
                resp.release()
            following = _redirect_target(target, location)
            if following in seen:
                raise TooManyRedirects(f"redirect loop: {target} leads back to {following}")
            if following.origin() != target.origin():
                sent = {k: v for k, v in sent.items() if k.lower() not in CROSS_ORIGIN_DROPPED}
            seen.add(following)
            target = following
        raise TooManyRedirects(f"more than {self._max_redirects} redirects, last to {target}")

    async def _send(self, url: URL, headers: Mapping[str, str], remaining: float) -> ClientResponse:
        assert self._session is not None
        if remaining <= 0:
            raise OriginTimeout(
                f"{_origin(url)}: redirects took longer than {self._total_timeout}s"
            )
        try:
            return await self._session.get(
                url, headers=headers, allow_redirects=False, timeout=self._timeout(remaining)
            )
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise _translate(exc, url) from exc

    async def _body(
        self, resp: ClientResponse, codings: Sequence[str], url: URL
    ) -> AsyncGenerator[bytes, None]:
        decoders = _Layers([_DECODERS[c]() for c in reversed(codings)], self._max_body)
        received = 0
        try:
            async for data in resp.content.iter_chunked(READ_SIZE):
                received += len(data)
                if received > self._max_body:
                    raise OriginTooLarge(f"{_origin(url)} sent over {self._max_body} bytes")
                for piece in decoders.feed(data):
                    yield piece
            for piece in decoders.finish():
                yield piece
        except (aiohttp.ClientError, OSError) as exc:
            raise _translate(exc, url) from exc


class _GuardedResolver(AbstractResolver):
    """Resolves through ``upstream`` and refuses the name if ANY address is off limits."""

    def __init__(self, upstream: AbstractResolver, allow_private: bool) -> None:
        self._upstream = upstream
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._upstream.resolve(host, port, family)
        for result in results:
            try:
                check_address(result["host"], allow_private=self._allow_private)
            except BlockedAddress as exc:
                raise BlockedAddress(
                    f"host {host}", f"resolves to {exc.reason} {exc.target}"
                ) from None
        return results

    async def close(self) -> None:
        """The upstream resolver belongs to whoever made it; the fetcher closes it."""


class _GuardedConnector(aiohttp.TCPConnector):
    """Checks the peer of every connection it hands out, before the request is written."""

    def __init__(
        self, allow_private: bool, *, resolver: AbstractResolver, use_dns_cache: bool
    ) -> None:
        super().__init__(resolver=resolver, use_dns_cache=use_dns_cache)
        self._allow_private = allow_private

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        try:
            if not peer:
                raise OriginUnreachable(f"connection to {req.url.host} has no peer address")
            check_address(str(peer[0]), allow_private=self._allow_private)
        except ProtocolError:
            conn.close()
            raise
        return conn


def _request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    sent = {k: v for k, v in headers.items() if k.lower() not in DROPPED_REQUEST_HEADERS}
    # A byte range of an encoded body could not be decoded alone: ask for plain bytes.
    ranged = any(k.lower() == "range" for k in sent)
    sent["Accept-Encoding"] = "identity" if ranged else ACCEPT_ENCODING
    return sent


def _redirect_location(resp: ClientResponse) -> str | None:
    if resp.status not in REDIRECT_STATUSES:
        return None
    return resp.headers.get(hdrs.LOCATION) or None


def _redirect_target(current: URL, location: str) -> URL:
    """The next hop (303 and all others become a GET: the fetcher only GETs), re-parsed."""
    try:
        joined = current.join(URL(location))
        return parse_origin_url(str(joined))
    except (ValueError, TypeError, BadUrl) as exc:
        detail = exc.message if isinstance(exc, BadUrl) else str(exc)
        raise BadUrl(f"{_origin(current)} redirected to an unfit URL: {detail}") from None


def _content_codings(resp: ClientResponse) -> list[str]:
    """Content codings in the order they were applied; refuses those we cannot decode."""
    codings = [
        c.strip().lower()
        for value in resp.headers.getall(hdrs.CONTENT_ENCODING, [])
        for c in value.split(",")
        if c.strip() and c.strip().lower() != "identity"
    ]
    unknown = [c for c in codings if c not in _DECODERS]
    if unknown:
        raise BadOriginEncoding(f"unsupported Content-Encoding {unknown[0]!r}")
    if len(codings) > MAX_CODINGS:
        raise BadOriginEncoding(f"{len(codings)} stacked content codings, limit {MAX_CODINGS}")
    return codings


def _check_declared_length(resp: ClientResponse, max_body: int) -> None:
    if resp.status in NO_BODY_STATUSES or resp.status < 200:
        return  # a 304's Content-Length describes the stored copy, not bytes that follow
    declared = resp.headers.get(hdrs.CONTENT_LENGTH, "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_body:
        raise OriginTooLarge(f"{_origin(resp.url)} declares {declared} bytes, limit {max_body}")


def _response_headers(resp: ClientResponse, codings: Sequence[str]) -> list[tuple[str, str]]:
    stale = {"content-encoding", "content-length"} if codings else set()
    return [(k, v) for k, v in resp.headers.items() if k.lower() not in stale]


def _origin(url: URL) -> str:
    return f"origin {url.host}:{url.port}"


def _translate(exc: BaseException, url: URL) -> ProtocolError:  # noqa: PLR0911 (one per kind)
    """A client-library failure as the refusal it means to the requester."""
    where = _origin(url)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, LineTooLong):
            return OriginTooLarge(f"{where} sent a header line over {MAX_FIELD_SIZE} bytes")
        cause = cause.__cause__
    if isinstance(exc, asyncio.TimeoutError):
        return OriginTimeout(f"{where} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return OriginUnreachable(f"{where}: cannot resolve {url.host}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return OriginUnreachable(f"{where}: cannot connect ({exc.os_error.strerror or exc})")
    if isinstance(exc, aiohttp.InvalidURL):
        return BadUrl(f"URL not accepted by the HTTP client: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return OriginUnreachable(f"{where} sent a malformed response: {exc.message}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return OriginUnreachable(f"{where} broke off the body: {exc}")
    return OriginUnreachable(f"{where}: connection failed ({type(exc).__name__})")


# --- incremental decoding: every call's output is bounded, whatever the input ---


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class _Layers:
    """Decoders applied in turn; every layer's total output is capped, not just the last."""

    def __init__(self, decoders: list[_Decoder], cap: int) -> None:
        self._decoders = decoders
        self._produced = [0] * len(decoders)
        self._cap = cap

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            for piece in decoder.finish():
                yield from self._counted(index, piece)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield data
            return
        for piece in self._decoders[index].feed(data):
            yield from self._counted(index, piece)

    def _counted(self, index: int, piece: bytes) -> Iterator[bytes]:
        self._produced[index] += len(piece)
        if self._produced[index] > self._cap:
            raise OriginTooLarge(f"decoded body exceeds {self._cap} bytes; refused, not expanded")
        yield from self._through(index + 1, piece)


def _split(data: bytes) -> Iterator[bytes]:
    if len(data) <= READ_SIZE:
        if data:
            yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), READ_SIZE):
        yield bytes(view[start : start + READ_SIZE])


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


class _ZlibDecoder:
    """gzip (several members allowed) or deflate (zlib-wrapped, or raw as some servers send)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(_GZIP_WBITS) if gzip else None
        self._head = b""
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            self._fed = True
        if self._obj is None:  # deflate: sniff the zlib header from the first two bytes
            self._head += data
            if len(self._head) < 2:
                return
            first, second = self._head[0], self._head[1]
            zlib_wrapped = first & 0x0F == 8 and ((first << 8) | second) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        while True:
            if self._obj.eof:
                rest = self._obj.unused_data
                if not (self._gzip and rest.startswith(b"\x1f\x8b")):
                    return  # bytes after the end of the stream are ignored, as browsers do
                self._obj = zlib.decompressobj(_GZIP_WBITS)
                data = rest + data
            try:
                out = self._obj.decompress(data, READ_SIZE)
            except zlib.error as exc:
                raise BadOriginEncoding(f"corrupt {self._name} body: {exc}") from None
            data = self._obj.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < READ_SIZE and not self._obj.eof:
                return

    def finish(self) -> Iterator[bytes]:
        if self._fed and (self._obj is None or not self._obj.eof):
            raise BadOriginEncoding(f"{self._name} body ends before its end marker")
        return iter(())

    @property
    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"


class _BrotliDecoder:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        pending: list[bytes] = []
        size = 0
        for part in _slices(data, BROTLI_SLICE):
            if self._obj.is_finished():
                raise BadOriginEncoding("data after the end of the br stream")
            try:
                out: bytes = self._obj.process(part)
            except brotli.error as exc:
                raise BadOriginEncoding(f"corrupt br body: {exc}") from None
            if len(out) >= READ_SIZE:  # a big piece goes out as is, never copied into a join
                yield from _split(b"".join(pending))
                yield from _split(out)
                pending, size = [], 0
                continue
            pending.append(out)
            size += len(out)
            if size >= READ_SIZE:
                yield from _split(b"".join(pending))
                pending, size = [], 0
        yield from _split(b"".join(pending))

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._obj.is_finished():
            raise BadOriginEncoding("br body ends before its last meta-block")
        return iter(())


class _ZstdDecoder:
    """zstd, one frame after another (RFC 8878 allows several)."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj = self._dctx.decompressobj()
        self._in_frame = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        for part in _slices(data, ZSTD_SLICE):
            todo = part
            while todo:
                self._in_frame = True
                try:
                    out = self._obj.decompress(todo)
                except zstandard.ZstdError as exc:
                    raise BadOriginEncoding(f"corrupt zstd body: {exc}") from None
                todo = b""
                if self._obj.eof:
                    todo = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = False
                yield from _split(out)

    def finish(self) -> Iterator[bytes]:
        if self._in_frame:
            raise BadOriginEncoding("zstd body ends inside a frame")
        return iter(())


_DECODERS: dict[str, Callable[[], _Decoder]] = {
    "gzip": lambda: _ZlibDecoder(gzip=True),
    "x-gzip": lambda: _ZlibDecoder(gzip=True),
    "deflate": lambda: _ZlibDecoder(gzip=False),
    "br": _BrotliDecoder,
    "zstd": _ZstdDecoder,
}
