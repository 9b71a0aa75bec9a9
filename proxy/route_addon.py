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
        request = flow.request
        if request.method not in CARRIED_METHODS and request.host != PAGES_HOST:
            flow.response = http.Response.make(
                405,
                f"Atlas carries GET and HEAD through paid edges; {request.method} is not sent.\n",
                {"Content-Type": "text/plain; charset=utf-8", "Allow": "GET, HEAD"},
            )
            return
        if request.host == PAGES_HOST:
            path = request.path
        else:
            request.headers[RELAY_URL_HEADER] = original_url(request)
            path = RELAY_PATH
        request.headers[RELAY_SECRET_HEADER] = self._secret
        request.scheme, request.host, request.port, request.path = (
            "http", "127.0.0.1", self._port, path,
        )  # fmt: skip
        request.headers["Host"] = f"127.0.0.1:{self._port}"
        if ctx.options.mode and ctx.options.mode[0].startswith("upstream:"):
            flow.server_conn.via = None  # straight to our relay, not to the upstream edge

    async def request(self, flow: http.HTTPFlow) -> None:
        """Answer a one-chunk content here (proxy/in_place.py); hand anything longer, opened,
        to the relay. A request body mitmproxy streams (a GET with over 64 KiB) goes to the
        relay as it is."""
        request = flow.request
        url = request.headers.get(RELAY_URL_HEADER)
        if url is None or request.path != RELAY_PATH or request.stream or flow.response:
            return
        answered = await answer_in_place(self._state, request, url)
        if isinstance(answered, str):
            request.headers[OPENED_HEADER] = answered
        else:
            flow.response = answered

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.stream = True  # never hold a body in mitmproxy


def original_url(request: http.Request) -> str:
    """The URL asked for; mitmproxy's ``pretty_url`` leaves an IPv6 host unbracketed."""
    if ":" not in request.host:
        return request.pretty_url
    default = {"http": 80, "https": 443}.get(request.scheme)
    port = "" if request.port == default else f":{request.port}"
    return f"{request.scheme}://[{request.host}]{port}{request.path}"
