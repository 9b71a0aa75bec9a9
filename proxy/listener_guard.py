"""mitmproxy addon: the proxy port's header timeout and per-address connection cap.

The same policy as every Atlas listener (:mod:`requester.listener_limits`), applied
with mitmproxy's hooks, since mitmproxy has neither: its only timer closes a
connection after ten minutes without a byte, which a client trickling a request head
never reaches. A connection over the cap is refused in ``client_connected`` (setting
``client.error`` makes mitmproxy close it). A timer armed there closes the connection
unless its request head (``requestheaders``, or ``http_connect`` for a CONNECT) arrives
within the header timeout. After a response, the next request head on the kept-alive
connection must come within :data:`KEEPALIVE_TIMEOUT` plus the header timeout. An open
CONNECT tunnel is never timed by this.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import connection, ctx, http

from requester.listener_limits import AddressCounter, ListenerLimits, peer_host

log = logging.getLogger(__name__)
KEEPALIVE_TIMEOUT = 75.0
"""Idle time allowed between a response and the next request, as on the aiohttp ports."""


class ListenerGuard:
    def __init__(self, limits: ListenerLimits) -> None:
        self._limits = limits
        self._counter = AddressCounter(limits.max_per_address)
        self._admitted: dict[str, str] = {}
        """Client id -> the address key it counts against."""
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: dict[str, int] = {}

    def client_connected(self, client: connection.Client) -> None:
        key = self._counter.admit(peer_host(client.peername))
        if key is None:
            client.error = f"more than {self._limits.max_per_address} connections from one address"
            return
        self._admitted[client.id] = key
        self._arm(client.id, self._limits.header_timeout)

    def client_disconnected(self, client: connection.Client) -> None:
        key = self._admitted.pop(client.id, None)
        if key is None:
            return  # refused in client_connected
        self._disarm(client.id)
        self._in_flight.pop(client.id, None)
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
            self._arm(client_id, KEEPALIVE_TIMEOUT + self._limits.header_timeout)

    def _arm(self, client_id: str, delay: float) -> None:
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
        server = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        handler = server.connections.get(client_id) if server is not None else None
        if handler is None:
            return
        io = handler.transports.get(handler.client)
        if io is not None and io.handler is not None:
            log.debug("closing %s: no request head in time", handler.client.peername)
            io.handler.cancel("no request head in time")
