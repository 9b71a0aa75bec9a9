"""mitmproxy addon: the proxy port's header timeout and per-address connection cap.

The same policy as every Atlas listener (:mod:`requester.listener_limits`), applied
with mitmproxy's hooks, since mitmproxy has neither: its only timer closes a
connection after ten minutes without a byte, which a client trickling a request head
never reaches. A connection over the cap is refused in ``client_connected`` (setting
``client.error`` makes mitmproxy close it). A timer armed there closes the connection
unless its request head (``requestheaders``, or ``http_connect`` for a CONNECT) arrives
within the header timeout. After a response, a kept-alive connection may idle for
:data:`KEEPALIVE_TIMEOUT`; the next request head must then arrive whole within the header
timeout of its first byte. An open CONNECT tunnel is never timed by this.

mitmproxy also buffers a request head of any size (300 MiB took 2.4 s and 300 MB of
memory). So the client's stream reader is wrapped: a head over :data:`MAX_HEAD_BYTES`
gets ``431`` and the connection is closed. The wrapper also sees a head's first byte.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import cast

from mitmproxy import connection, ctx, http
from mitmproxy.proxy.server import ConnectionIO

from requester.errors import PROBLEM_JSON, Problem
from requester.listener_limits import AddressCounter, ListenerLimits, peer_host
from requester.listener_problems import HEAD_TOO_LARGE

log = logging.getLogger(__name__)
KEEPALIVE_TIMEOUT = 75.0
"""Idle time allowed between a response and the next request, as on the aiohttp ports."""
MAX_HEAD_BYTES = 64 * 1024
"""Largest request head (request line and headers) the proxy port reads."""
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class _HeadLimitedReader:
    """A client's stream reader that ends the stream (after a 431) when a request head it
    is waiting for grows past :data:`MAX_HEAD_BYTES`. mitmproxy only calls ``read``."""

    def __init__(self, inner: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._inner = inner
        self._writer = writer
        self._counting = True
        self._seen = 0
        self._tail = b""
        self._on_first_byte: Callable[[], None] | None = None

    def expect_head(self, on_first_byte: Callable[[], None] | None = None) -> None:
        """A new request head is due: count its bytes from now (and say when one comes)."""
        self._counting, self._seen, self._tail = True, 0, b""
        self._on_first_byte = on_first_byte

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        if not self._counting or not data:
            return data
        if self._on_first_byte is not None:
            started, self._on_first_byte = self._on_first_byte, None
            started()
        window = self._tail + data
        end = _HEAD_END.search(window)
        self._seen += (end.end() - len(self._tail)) if end else len(data)
        self._tail = window[-3:]
        if end is not None:
            self._counting = False  # the rest is a body, or the next request's
        if self._seen <= MAX_HEAD_BYTES:
            return data
        detail = f"a request head may have at most {MAX_HEAD_BYTES} bytes"
        body = Problem(HEAD_TOO_LARGE, "request_head_too_large", detail).json().encode()
        self._writer.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
            + b"Content-Type: %s\r\n" % PROBLEM_JSON.encode()
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        log.debug("closing %s: request head over %d bytes", self._writer.get_extra_info("peername"),
                  MAX_HEAD_BYTES)  # fmt: skip
        return b""  # mitmproxy takes it as the client closing


class ListenerGuard:
    def __init__(self, limits: ListenerLimits) -> None:
        self._limits = limits
        self._counter = AddressCounter(limits.max_per_address)
        self._admitted: dict[str, str] = {}
        """Client id -> the address key it counts against."""
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: dict[str, int] = {}
        self._readers: dict[str, _HeadLimitedReader] = {}

    def client_connected(self, client: connection.Client) -> None:
        key = self._counter.admit(peer_host(client.peername))
        if key is None:
            client.error = f"more than {self._limits.max_per_address} connections from one address"
            return
        self._admitted[client.id] = key
        io = self._connection_io(client.id)
        if (
            io is not None
            and isinstance(io.reader, asyncio.StreamReader)
            and isinstance(io.writer, asyncio.StreamWriter)
        ):
            reader = self._readers[client.id] = _HeadLimitedReader(io.reader, io.writer)
            io.reader = cast(asyncio.StreamReader, reader)  # mitmproxy only calls read()
        self._arm(client.id, self._limits.header_timeout)

    def client_disconnected(self, client: connection.Client) -> None:
        key = self._admitted.pop(client.id, None)
        if key is None:
            return  # refused in client_connected
        self._disarm(client.id)
        self._in_flight.pop(client.id, None)
        self._readers.pop(client.id, None)
        self._counter.release(key)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._head(flow.client_conn.id)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._head(flow.client_conn.id)  # a tunnel: never timed again

    def response(self, flow: http.HTTPFlow) -> None:
        self._done(flow.client_conn.id)

    def error(self, flow: http.HTTPFlow) -> None:
        self._done(flow.client_conn.id)

    def _head(self, client_id: str) -> None:
        if client_id in self._admitted:
            self._disarm(client_id)
            self._in_flight[client_id] = self._in_flight.get(client_id, 0) + 1

    def _done(self, client_id: str) -> None:
        if client_id not in self._admitted or client_id not in self._in_flight:
            return
        self._in_flight[client_id] -= 1
        if self._in_flight[client_id] <= 0:
            del self._in_flight[client_id]
            self._arm(client_id, KEEPALIVE_TIMEOUT, kept_alive=True)

    def _arm(self, client_id: str, delay: float, *, kept_alive: bool = False) -> None:
        """Time the next request head: ``delay`` from now; on a kept-alive connection,
        the header timeout from its first byte once it starts within ``delay``."""
        timeout = self._limits.header_timeout
        reader = self._readers.get(client_id)
        if reader is None:
            self._start_timer(client_id, delay + timeout if kept_alive else delay)
            return
        started = (lambda: self._start_timer(client_id, timeout)) if kept_alive else None
        reader.expect_head(started)
        self._start_timer(client_id, delay)

    def _start_timer(self, client_id: str, delay: float) -> None:
        self._disarm(client_id)
        loop = asyncio.get_running_loop()
        self._timers[client_id] = loop.call_later(delay, self._expire, client_id)

    def _disarm(self, client_id: str) -> None:
        timer = self._timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, client_id: str) -> None:
        """Close the connection as mitmproxy's own inactivity timeout does: cancel its task."""
        self._timers.pop(client_id, None)
        io = self._connection_io(client_id)
        if io is not None and io.handler is not None:
            log.debug("closing client %s: no request head in time", client_id)
            io.handler.cancel("no request head in time")

    @staticmethod
    def _connection_io(client_id: str) -> ConnectionIO | None:
        """mitmproxy's reader, writer and task of a client's connection (its proxyserver
        addon keeps them by client id), or None once it is gone."""
        server = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        handler = server.connections.get(client_id) if server is not None else None
        return None if handler is None else handler.transports.get(handler.client)
