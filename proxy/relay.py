"""One response through Atlas: open the content via the SDK, answer with the verified
manifest's status and headers, stream the verified bytes as they arrive.

Shared by the browser path (mitmproxy routes requests here) and the mobile
API. Range requests are answered from the manifest: delivery starts at the
chunk holding the first byte, so a seek in a video costs only what it reads.
Memory per transfer is the SDK's window of chunks, never the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from proxy.failures import Failure, classify
from requester.client import AtlasClient, Download
from requester.protocol import UNKNOWN_SIZE

log = logging.getLogger(__name__)
FORWARDED_REQUEST_HEADERS = ("accept", "accept-language", "user-agent", "range")
"""Passed to the edge. ``range`` matters only for a URL whose responses the edge cannot
reuse: it then answers with the origin's 206 for that range (relayed as it is); otherwise
it returns the whole response and the relay cuts the range from its chunks."""
WRITE_SLICE = 256 * 1024
"""Bytes handed to the browser's response at once (see :func:`_write`)."""
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})", re.ASCII)
"""At most 19 digits: a longer position is past any size (and int() of thousands raises)."""


def total_size(download: Download) -> int | None:
    seal = download.scheduler.verifier.seal
    if seal is not None:
        return seal.total_size
    hint = download.head.size_hint
    return None if hint == UNKNOWN_SIZE else hint


def parse_range(value: str | None, total: int) -> tuple[int, int] | str | None:  # noqa: PLR0911
    """(first, last) of a single satisfiable range; None to ignore it; "unsatisfiable"."""
    if not value:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match[1] and not match[2]):
        return None  # multiple ranges or odd syntax: RFC 9110 lets us send the whole
    if not match[1]:
        length = int(match[2])
        if length == 0:
            return "unsatisfiable"
        return max(0, total - length), total - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else total - 1
    if first >= total:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, total - 1)


@dataclass(frozen=True)
class Answer:
    """What the response to an opened download says before its body: status, headers, and
    the content's bytes ``first`` to ``last`` it carries (``last`` None: to the end)."""

    status: int
    headers: CIMultiDict[str]
    first: int
    last: int | None
    ranged: bool
    bodiless: bool
    chunk_size: int

    @property
    def length(self) -> int | None:
        """The body's length, for Content-Length (None: unknown, or a 204/304)."""
        if self.last is None or self.status in (204, 304):
            return None
        return self.last - self.first + 1


def answer(download: Download, method: str, range_value: str | None) -> Answer | web.Response:
    """The response's status and headers from the verified head (a 416 for a Range past the
    end); a satisfiable Range moves the download's start to the chunk holding its first
    byte."""
    head = download.head
    total = total_size(download)
    wanted = parse_range(range_value, total) if head.status == 200 and total else None
    if wanted == "unsatisfiable":
        return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in head.headers:
        if name not in ("date", "server"):
            headers.add(name, value)
    headers["Via"] = "1.1 atlas"
    headers["X-Atlas-Content-Id"] = head.content_id.hex()
    first, last = 0, (total - 1 if total is not None else None)
    if total is not None and head.status == 200:
        headers["Accept-Ranges"] = "bytes"
    ranged = isinstance(wanted, tuple)
    if isinstance(wanted, tuple):
        first, last = wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{total}"
        download.scheduler.start_at(first // head.chunk_size)
    bodiless = method == "HEAD" or head.status in (204, 304)
    return Answer(206 if ranged else head.status, headers, first, last, ranged, bodiless,
                  head.chunk_size)  # fmt: skip


async def relay(
    request: web.Request,
    client: AtlasClient,
    url: str,
    headers: Mapping[str, str],
    render: Callable[[Failure, str], web.StreamResponse],
    file: str | None = None,
    opened: Download | None = None,
) -> web.StreamResponse:
    """Answer ``request`` with ``url`` fetched, verified and paid through Atlas.

    ``url`` may be a magnet link or infohash, with ``file`` naming the file in the torrent.
    ``opened``: the download the proxy port's addon already opened for it (no second
    ``/v1/fetch``).
    """
    if opened is None:
        try:
            opened = await client.open(url, forwarded(headers), file=file)
        except Exception as exc:  # every failure before the first byte becomes a page
            log.info("cannot open %s: %s", url, exc)
            return render(classify(exc), url)
    download = opened
    plan = answer(download, request.method, headers.get("Range"))
    if isinstance(plan, web.Response):
        return plan
    resp = web.StreamResponse(status=plan.status, headers=plan.headers)
    if plan.length is not None:
        resp.content_length = plan.length
    async with aclosing(download.chunks()) as chunks:
        try:  # the first chunk before the headers: a failure now is still a page
            opening = b"" if plan.bodiless else await anext(chunks, b"")
        except Exception as exc:
            log.info("first chunk of %s failed: %s", url, exc)
            return render(classify(exc), url)
        await resp.prepare(request)
        if not plan.bodiless:
            remaining = plan.length if plan.ranged else None
            await _stream(request, resp, opening, chunks, plan.first % plan.chunk_size, remaining)
    return resp


def forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers passed to the edge (FORWARDED_REQUEST_HEADERS)."""
    return {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}


async def _stream(
    request: web.Request,
    resp: web.StreamResponse,
    opening: bytes,
    chunks: AsyncIterator[bytes],
    skip: int,
    remaining: int | None,
) -> None:
    """Write the verified bytes from ``skip`` on, ``remaining`` of them (or all)."""
    try:
        chunk = opening
        del opening
        while chunk:
            view = memoryview(chunk)[skip:]
            skip = 0
            if remaining is not None:
                view = view[:remaining]
                remaining -= len(view)
            await _write(resp, view)
            del chunk, view  # released before the next one is awaited
            if remaining == 0:
                break
            chunk = await anext(chunks, b"")
    except Exception as exc:  # headers are gone: the only honest signal left is a cut
        log.warning("stream broke after headers: %s", exc)
        if request.transport is not None:
            request.transport.close()
        return
    await resp.write_eof()


async def _write(resp: web.StreamResponse, view: memoryview) -> None:
    """``view`` in slices of :data:`WRITE_SLICE`: what the socket does not take at once is
    copied into the transport's buffer, so a whole 1 MiB chunk written at once held a
    second copy of most of it until mitmproxy read it."""
    for start in range(0, len(view), WRITE_SLICE):
        await resp.write(view[start : start + WRITE_SLICE])
