"""Small responses answered inside mitmproxy, without the hop to the relay.

mitmproxy streams only server responses, so a body that streams must come from
the relay (:mod:`proxy.backend`). A page asset is one chunk, though: the proxy
port's addon opens the download itself (the edge's ``/v1/fetch``, the head
checked) and, when the content is sealed and one chunk long, reads that chunk
(verified and paid as on the relay) and answers from the hook. Anything longer,
or not sealed yet, is handed to the relay already opened (no second
``/v1/fetch``), which streams it. The hop cost about 0.3 ms of CPU per request:
an HTTP exchange on each side of a loopback socket (docs/proxy.md).
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web
from mitmproxy import http
from mitmproxy.net.http import status_codes

from proxy.backend import admit
from proxy.failures import classify, html_page
from proxy.fresh_heads import reusable_request
from proxy.relay import Answer, answer, forwarded
from proxy.state import Handoff, ProxyState
from requester.single_chunk import is_single

if TYPE_CHECKING:
    from requester.client import AtlasClient, Download

log = logging.getLogger(__name__)


def fits(download: Download) -> bool:
    """Sealed and one chunk long: its whole body is the one chunk the relay would also hold
    before sending headers, so answering it whole costs no memory or first-byte time."""
    return is_single(download.scheduler.verifier, download.scheduler.start_index)


async def answer_in_place(
    state: ProxyState, request: http.Request, url: str
) -> http.Response | str:
    """The response to ``request`` for ``url``, or the token under which the opened
    download waits for the relay (``backend.OPENED_HEADER``)."""
    admitted = await admit(state, url, html_page)
    if isinstance(admitted, web.Response):
        return from_aiohttp(admitted)
    assert not isinstance(admitted, web.StreamResponse)  # admit's refusals are Responses
    url, file, site = admitted
    state.requests += 1
    state.active += 1
    client = state.new_client(site)
    handed = False
    try:
        fresh = state.fresh.get(url, file) if reusable_request(request.headers.fields) else None
        if fresh is not None:  # proxy/fresh_heads.py: no /v1/fetch
            try:
                reopened = client.reopen(fresh.head, fresh.seal, fresh.origin)
                return await _whole(client, reopened, request)
            except Exception as exc:  # the edge no longer serves it so: ask it again
                log.info("reusing the head of %s failed: %s", url, exc)
                state.fresh.forget(url, file)
        try:
            download = await client.open(url, forwarded(dict(request.headers)), file=file)
        except Exception as exc:  # every failure before the first byte becomes a page
            log.info("cannot open %s: %s", url, exc)
            return from_aiohttp(html_page(classify(exc), url))
        if not fits(download):
            handed = True
            return state.hand_over(Handoff(client, download, site))
        try:
            response = await _whole(client, download, request)
        except Exception as exc:
            log.info("chunks of %s failed: %s", url, exc)
            return from_aiohttp(html_page(classify(exc), url))
        state.fresh.remember(url, file, download)
        return response
    finally:
        if not handed:
            state.active -= 1
            state.client_done(site, client)


async def _whole(client: AtlasClient, download: Download, request: http.Request) -> http.Response:
    """The one-chunk content answered whole, as the relay would stream it: its chunk fetched
    without the scheduler's workers, and the seal checked (requester/single_chunk.py)."""
    plan = answer(download, request.method, request.headers.get("Range"))
    if isinstance(plan, web.Response):  # 416
        return from_aiohttp(plan)
    body = b""
    if not plan.bodiless:
        body = await client.single_chunk(download)
        skip = plan.first % plan.chunk_size
        body = body[skip : skip + plan.length] if plan.ranged and plan.length else body[skip:]
    return _response(plan, body)


def _response(plan: Answer, body: bytes) -> http.Response:
    fields = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in plan.headers.items()]
    if plan.length is not None:
        fields.append((b"Content-Length", str(plan.length).encode()))
    fields.append((b"Date", email.utils.formatdate(usegmt=True).encode()))
    return _make(plan.status, fields, body)


def from_aiohttp(resp: web.Response) -> http.Response:
    """An aiohttp response (a page, a 416) as mitmproxy's: status, headers and body."""
    body = resp.body if isinstance(resp.body, bytes) else b""
    fields = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in resp.headers.items()]
    if "Content-Length" not in resp.headers:
        fields.append((b"Content-Length", str(len(body)).encode()))
    return _make(resp.status, fields, body)


def _make(status: int, fields: list[tuple[bytes, bytes]], body: bytes) -> http.Response:
    """Headers and body as given, in one construction: ``Response.make`` would re-encode a
    body with a Content-Encoding, and setting its headers and body after it built a default
    pair cost twice (mitmproxy type-checks every field of a message it builds)."""
    now = time.time()
    reason = status_codes.RESPONSES.get(status, "").encode()
    return http.Response(b"HTTP/1.1", status, reason, http.Headers(fields), body, None, now, now)
