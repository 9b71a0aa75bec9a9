"""aiohttp listeners that enforce :mod:`requester.listener_limits`.

aiohttp has no header read timeout (its keep-alive timer only closes a connection that
has been idle for a whole keep-alive period, and a byte every few seconds is not idle)
and no per-address cap. :class:`GuardedSite` is a TCP site whose connections are
:class:`GuardedRequestHandler`: the cap is checked when a connection opens, and a timer
armed then (or at the first byte of a later request on a kept-alive connection) closes it
unless a whole request head has been parsed in time. What aiohttp answers by itself
(refused heads, uncaught errors, the router's 404 and 405) is a JSON problem
(:mod:`requester.listener_problems`). Every Atlas aiohttp server (edge,
ledger, the proxy's API) listens through it; it is in the SDK so the proxy need not
import the edge.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from requester.listener_limits import AddressCounter, ListenerLimits, peer_host
from requester.listener_problems import error_problem, http_exception_problem

log = logging.getLogger(__name__)


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, plus the per-address cap and the header timer."""

    __slots__ = ("_counter", "_head_timer", "_header_timeout", "_in_request", "_key")

    def __init__(
        self, manager: web.Server, counter: AddressCounter, header_timeout: float, **options: Any
    ) -> None:
        super().__init__(manager, **options)
        self._counter = counter
        self._header_timeout = header_timeout
        self._key: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_request = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._key = self._counter.admit(peer_host(transport.get_extra_info("peername")))
        if self._key is None:
            transport.close()  # over the cap: aiohttp never sees this connection
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._key is None:
            return
        self._disarm()
        self._counter.release(self._key)
        self._key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._in_request == 0 and self._key is not None:
            self._arm()  # first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def head_received(self) -> None:
        """A whole request head was parsed: its handler starts now."""
        self._disarm()
        self._in_request += 1

    def request_done(self) -> None:
        self._in_request -= 1

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        log.debug("closed a connection from %s: no request head in %.1f s",
                  self._key, self._header_timeout)  # fmt: skip
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """What aiohttp answers itself (a refused request head, an uncaught exception),
        as a problem instead of ``text/plain``; the connection closes after it."""
        if isinstance(exc, HttpProcessingError) and status < 500:
            # One line, no traceback: any client can send these, as often as it likes.
            log.info("refused a malformed request from %s (%s): %.200s",
                     request.remote, status, exc.message)  # fmt: skip
        elif status == 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has begun: no error can be sent")
        resp = error_problem(status, exc, self.max_headers)
        resp.force_close()
        return resp


def _track_heads(server: web.Server) -> None:
    """Tell each guarded connection when a request's handler starts and ends, and answer
    the HTTP errors no middleware turned into problems (a 404 of the router...) as problems.

    The server's request handler is what aiohttp calls once a request head is parsed;
    wrapping it once (handlers copy it when they are made) is the one public place that
    sees every request begin and end.
    """
    inner = server.request_handler
    if getattr(inner, "tracks_heads", False):
        return

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        guarded = protocol if isinstance(protocol, GuardedRequestHandler) else None
        if guarded is not None:
            guarded.head_received()
        try:
            return await inner(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return http_exception_problem(exc, request)
        finally:
            if guarded is not None:
                guarded.request_done()

    handle.tracks_heads = True  # type: ignore[attr-defined]
    server.request_handler = handle


class GuardedSite(web.BaseSite):
    """A TCP site (like ``web.TCPSite``) whose connections obey ``limits``.

    ``handler_options`` are ``web.RequestHandler``'s (keep-alive timeout, line and header
    limits, access log); they apply to every connection of this site.
    """

    __slots__ = ("_host", "_limits", "_options", "_port")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, limits: ListenerLimits,
        **handler_options: Any,
    ) -> None:  # fmt: skip
        super().__init__(runner)
        self._host, self._port = host, port
        self._limits = limits
        self._options = handler_options

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()  # registers the site with its runner
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        _track_heads(server)
        loop = asyncio.get_running_loop()
        counter = AddressCounter(self._limits.max_per_address)
        timeout, options = self._limits.header_timeout, self._options

        def connection() -> GuardedRequestHandler:
            return GuardedRequestHandler(server, counter, timeout, loop=loop, **options)

        self._server = await loop.create_server(connection, self._host, self._port)
