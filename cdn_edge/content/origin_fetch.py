"""Fetching origin URLs for requesters: behind an SSRF guard, in bounded memory and time.

Every refusal is a :class:`ServiceRefusal` that the problem middleware turns into JSON::

    ServiceRefusal (requester/errors.py)
    ├── BadUrl               400 bad_url               not an http(s) URL we fetch
    ├── BlockedAddress       403 blocked_address       SSRF guard: address or port off limits
    ├── OriginUnreachable    502 origin_unreachable    DNS failure, refused, bad HTTP
    │   ├── OriginTlsInvalid 502 origin_tls_invalid    its TLS certificate does not verify
    │   ├── OriginTruncated  502 origin_truncated      body ended before its stated length
    │   └── OriginReset      502 origin_reset          connection reset (mid-body, mostly)
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

Bodies are streamed and decoded incrementally with every layer's output capped
(:mod:`cdn_edge.content.decoding`) at ``max_body`` bytes and at a ratio to the bytes
read, so a compression bomb is refused after a few MiB instead of expanded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import ClientRequest, ClientResponse, hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import Connection
from aiohttp.http_exceptions import ContentLengthError, LineTooLong, TransferEncodingError
from aiohttp.tracing import Trace
from yarl import URL

from cdn_edge.address_policy import (
    BadUrl,
    BlockedAddress,
    check_address,
    check_origin_url,
    parse_origin_url,
)
from cdn_edge.content.decoding import DECODERS, Layers
from cdn_edge.content.origin_errors import (
    BadOriginEncoding,
    OriginReset,
    OriginTimeout,
    OriginTlsInvalid,
    OriginTooLarge,
    OriginTruncated,
    OriginUnreachable,
    TooManyRedirects,
)
from requester.errors import Refusal, ServiceRefusal

__all__ = [
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

DEFAULT_MAX_BODY = 1 << 30
READ_BUFFER = 128 * 1024
"""Body bytes buffered per response before reading pauses (aiohttp pauses at twice this,
resumes below it): at 64 KiB the socket was paused and resumed (two epoll calls) about
every 64 KiB read."""
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
            read_bufsize=READ_BUFFER,
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
        decoders = Layers([DECODERS[c]() for c in reversed(codings)], self._max_body)
        received = 0
        try:
            # The pieces as aiohttp's parser buffered them (up to one socket read, 256 KiB):
            # iter_chunked(n) sliced them to n bytes, copying the rest each time.
            async for data, _ in resp.content.iter_chunks():
                if not data:
                    continue  # the end of an HTTP chunk (chunked transfer coding)
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
        except Refusal:
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
    unknown = [c for c in codings if c not in DECODERS]
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


def _translate(exc: BaseException, url: URL) -> ServiceRefusal:  # noqa: PLR0911 (one per kind)
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
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        why = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return OriginTlsInvalid(f"{where}: the TLS certificate of {url.host} is not valid ({why})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return OriginUnreachable(f"{where}: cannot connect ({exc.os_error.strerror or exc})")
    if isinstance(exc, aiohttp.InvalidURL):
        return BadUrl(f"URL not accepted by the HTTP client: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return OriginUnreachable(f"{where} sent a malformed response: {exc.message}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return _broken_body(exc, where)
    if isinstance(exc, ConnectionResetError):
        return OriginReset(f"{where} reset the connection")
    return OriginUnreachable(f"{where}: connection failed ({type(exc).__name__})")


def _broken_body(exc: aiohttp.ClientPayloadError, where: str) -> ServiceRefusal:
    """A body that stopped short: reset, or closed before its framing said it ends.

    aiohttp names a reset only in the message of the payload error it raises.
    """
    framing = exc.__cause__
    if not isinstance(framing, ContentLengthError | TransferEncodingError):
        return OriginUnreachable(f"{where} broke off the body: {exc}")
    short = framing.message.rstrip(".")
    if "ConnectionResetError" in str(exc):
        return OriginReset(f"{where} reset the connection in the middle of the body: {short}")
    return OriginTruncated(f"{where} closed the connection before the body's end: {short}")
