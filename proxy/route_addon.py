"""mitmproxy addon: hand every browser request to the proxy's relay service.

mitmproxy buffers request and response bodies unless a response streams, so
requests are not fetched by mitmproxy itself: each one is re-aimed at the
relay (``backend.RELAY_PATH``) with its original URL in a header, and the
relay's response is streamed back; a content of one chunk is answered here,
whole (:mod:`proxy.in_place`). Requests for ``http://atlas.proxy/`` reach
the proxy's own pages (status, CA certificate, PAC file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mitmproxy import ctx, http

from proxy.backend import OPENED_HEADER, RELAY_PATH, RELAY_SECRET_HEADER, RELAY_URL_HEADER
from proxy.in_place import answer_in_place
from proxy.state import ProxyState

PAGES_HOST = "atlas.proxy"
URL_KEY = "atlas_url"
"""``flow.metadata`` key of the URL asked for, from ``requestheaders`` to ``request``."""
CARRIED_METHODS = ("GET", "HEAD")


class RouteToRelay:
    def __init__(self, state: ProxyState, relay_port: int, on_running: Callable[[], None]) -> None:
        self._state = state
        self._port = relay_port
        self._secret = state.relay_secret
        self._on_running = on_running

    def running(self) -> None:
        asyncio.get_running_loop().call_soon(self._on_running)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Refuse what Atlas does not carry; aim at the relay now only what mitmproxy sends
        on before the ``request`` hook: the proxy's pages and a request whose body streams
        (a GET with over 64 KiB). A GET answered in place never needs the relay's headers,
        so the others are aimed in :meth:`request`, once that is known."""
        request = flow.request
        if request.method not in CARRIED_METHODS and request.host != PAGES_HOST:
            flow.response = http.Response.make(
                405,
                f"Atlas carries GET and HEAD through paid edges; {request.method} is not sent.\n",
                {"Content-Type": "text/plain; charset=utf-8", "Allow": "GET, HEAD"},
            )
            return
        if request.host == PAGES_HOST:
            self._aim(flow, request.path)
        elif request.stream or may_have_body(request):  # it may stream before ``request``
            self._aim(flow, RELAY_PATH, original_url(request))
        else:
            flow.metadata[URL_KEY] = original_url(request)

    async def request(self, flow: http.HTTPFlow) -> None:
        """Answer a one-chunk content here (proxy/in_place.py); hand anything longer, opened,
        to the relay. Whatever is not answered here (a longer content, an error in this
        hook) goes to the relay, which opens it itself if nothing was opened."""
        url = flow.metadata.pop(URL_KEY, None)
        if url is None or flow.response:
            return
        opened = None
        try:
            answered = await answer_in_place(self._state, flow.request, url)
            if isinstance(answered, str):
                opened = answered
            else:
                flow.response = answered
        finally:
            if flow.response is None:
                self._aim(flow, RELAY_PATH, url, opened)

    def _aim(self, flow: http.HTTPFlow, path: str, url: str | None = None,
             opened: str | None = None) -> None:  # fmt: skip
        """Send ``flow`` to our relay's ``path`` (with the original ``url`` and the token of
        a download already opened for it), straight, not through an upstream edge."""
        request = flow.request
        if url is not None:
            request.headers[RELAY_URL_HEADER] = url
        if opened is not None:
            request.headers[OPENED_HEADER] = opened
        else:
            request.headers.pop(OPENED_HEADER, None)  # only ever ours
        request.headers[RELAY_SECRET_HEADER] = self._secret
        request.scheme, request.host, request.port, request.path = (
            "http", "127.0.0.1", self._port, path,
        )  # fmt: skip
        request.headers["Host"] = f"127.0.0.1:{self._port}"
        if ctx.options.mode and ctx.options.mode[0].startswith("upstream:"):
            flow.server_conn.via = None  # straight to our relay, not to the upstream edge

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.stream = True  # never hold a body in mitmproxy


def may_have_body(request: http.Request) -> bool:
    """Whether a body may follow the request's head, which mitmproxy starts streaming to the
    server once it passes 64 KiB, without a ``request`` hook first: HTTP/2 and 3 tell only by
    their frames, HTTP/1 by ``Content-Length`` or ``Transfer-Encoding``."""
    if request.http_version not in ("HTTP/1.1", "HTTP/1.0"):
        return True
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def original_url(request: http.Request) -> str:
    """The URL asked for; mitmproxy's ``pretty_url`` leaves an IPv6 host unbracketed."""
    if ":" not in request.host:
        return request.pretty_url
    default = {"http": 80, "https": 443}.get(request.scheme)
    port = "" if request.port == default else f":{request.port}"
    return f"{request.scheme}://[{request.host}]{port}{request.path}"
