"""The edge's tunnels by id: admission, payment, status, and a short memory of closed ones.

Shared by the raw tunnel listener (which opens tunnels) and the HTTP routes
(which pay for them and report on them). A tunnel id is chosen by the client;
it stays taken while the tunnel is open and for ``CLOSED_KEPT`` seconds after,
so a client can still read how its tunnel ended. Units are paid like chunks:
a voucher checked and stored by the :class:`PaymentBook` before the bytes it
pays for move, or the requester's free allowance.

A tunnel opened over HTTP (``POST /v1/tunnels/{id}/open``) is *prepared*: its
target is connected and its first unit paid, and the book holds the target's
streams until the client's CONNECT with that id attaches to them, or for
``ATTACH_TIMEOUT`` seconds, after which it closes as ``not_attached``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from cdn_edge.config import EdgeConfig
from cdn_edge.edge_state import Edge
from cdn_edge.routes_chunks import make_quote
from cdn_edge.tunnel.connect_request import TooManyTunnels, TunnelInUse, UnknownTunnel
from cdn_edge.tunnel.meter import TunnelMeter
from cdn_edge.tunnel.relay import Streams, Tunnel
from requester.errors import Refusal
from requester.protocol import ANY_CONTENT, PaymentRequired, Quote, b64url_encode

CLOSED_KEPT = 60.0
"""Seconds a closed tunnel stays queryable (and its id taken)."""
ATTACH_TIMEOUT = 10.0
"""Seconds a prepared tunnel waits for its CONNECT before the edge closes it."""


class TunnelBook:
    def __init__(self, edge: Edge) -> None:
        self._edge = edge
        self.unit = edge.config.tunnel_unit
        self.unit_price = self.quote().chunk_price(self.unit)
        """Base units per unit: what a chunk of ``unit`` wire bytes costs at this edge."""
        self.url: str | None = None
        """Where the tunnel listener is reached, ``http://HOST:PORT``; None when off."""
        self._tunnels: dict[str, Tunnel] = {}
        self._pending: set[str] = set()
        """Ids of CONNECT requests being negotiated (reserved, not yet open)."""
        self._per_client: dict[str, int] = {}
        self._held = 0
        self._closed: deque[tuple[float, str]] = deque()
        self._prepared: dict[str, tuple[Streams, asyncio.TimerHandle]] = {}
        """Open tunnels whose target is connected and whose CONNECT has not come yet."""

    @property
    def config(self) -> EdgeConfig:
        return self._edge.config

    def refusal_headers(self, exc: Refusal) -> dict[str, str]:
        """The headers a refused tunnel's answer carries: a quote for a 402, Retry-After."""
        if isinstance(exc, PaymentRequired):
            return {"Atlas-Quote": b64url_encode(self.quote().encode()),
                    "Atlas-Price": str(self.unit_price)}  # fmt: skip
        return {"Retry-After": "1"} if exc.status == 503 else {}

    def quote(self) -> Quote:
        """A signed quote for byte-metered services (content id ``ANY_CONTENT``)."""
        return make_quote(self._edge, ANY_CONTENT, int(time.time()))

    # -- admission -------------------------------------------------------------------

    def reserve(self, tunnel_id: str, client: str) -> None:
        """Hold ``tunnel_id`` and a place under the caps while a CONNECT is negotiated."""
        config = self._edge.config
        self._purge(time.monotonic())
        if self._held >= config.max_tunnels:
            raise TooManyTunnels(f"this edge is at its limit of {config.max_tunnels} tunnels")
        if self._per_client.get(client, 0) >= config.max_tunnels_per_client:
            raise TooManyTunnels(
                f"{client} already holds {config.max_tunnels_per_client} tunnels, the limit"
            )
        if tunnel_id in self._tunnels or tunnel_id in self._pending:
            raise TunnelInUse(f"tunnel id {tunnel_id} is in use; choose a new random one")
        self._pending.add(tunnel_id)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self._held += 1

    def release(self, tunnel_id: str, client: str) -> None:
        """Give back what :meth:`reserve` held, for a CONNECT that was refused."""
        self._pending.discard(tunnel_id)
        self._unhold(client)

    def open(self, tunnel_id: str, target: str, client: str) -> Tunnel:
        """The reserved id becomes an open tunnel with one paid unit."""
        config = self._edge.config
        tunnel = Tunnel(
            tunnel_id, target, client, TunnelMeter.opened(self.unit, 1, time.monotonic()),
            refill=lambda: self.take_free(client, 1), metrics=self._edge.metrics,
            pay_timeout=config.tunnel_pay_timeout, idle_timeout=config.tunnel_idle_timeout,
            pace=self._pace(client),
        )  # fmt: skip
        self._pending.discard(tunnel_id)
        self._tunnels[tunnel_id] = tunnel
        self._edge.metrics.tunnels_opened.inc()
        self._edge.metrics.tunnels_open.inc()
        return tunnel

    def prepare(self, tunnel_id: str, target: str, client: str, streams: Streams) -> Tunnel:
        """The reserved id becomes an open tunnel whose target waits for its CONNECT."""
        tunnel = self.open(tunnel_id, target, client)
        expiry = asyncio.get_running_loop().call_later(ATTACH_TIMEOUT, self._drop, tunnel_id,
                                                       "not_attached")  # fmt: skip
        self._prepared[tunnel_id] = (streams, expiry)
        return tunnel

    def attach(self, tunnel_id: str, target: str, client: str) -> tuple[Tunnel, Streams] | None:
        """The prepared tunnel a CONNECT names, with its target; None if it names none."""
        entry = self._prepared.get(tunnel_id)
        if entry is None:
            return None
        tunnel = self._tunnels[tunnel_id]
        if tunnel.target != target or tunnel.client != client:
            raise TunnelInUse(f"tunnel id {tunnel_id} was opened for another target or client")
        del self._prepared[tunnel_id]
        entry[1].cancel()
        return tunnel, entry[0]

    def drop_prepared(self) -> None:
        """Close every tunnel still waiting for its CONNECT (the edge is stopping)."""
        for tunnel_id in list(self._prepared):
            self._drop(tunnel_id, "shutdown")

    def _drop(self, tunnel_id: str, reason: str) -> None:
        entry = self._prepared.pop(tunnel_id, None)
        if entry is not None:
            entry[1].cancel()
            entry[0][1].close()
            self.closed(self._tunnels[tunnel_id], reason)

    def closed(self, tunnel: Tunnel, reason: str) -> None:
        now = time.monotonic()
        if not tunnel.open:
            return
        tunnel.mark_closed(reason, now)
        self._closed.append((now, tunnel.id))
        self._unhold(tunnel.client)
        self._edge.metrics.tunnels_closed.labels(reason).inc()
        self._edge.metrics.tunnels_open.dec()

    def get(self, tunnel_id: str) -> Tunnel:
        self._purge(time.monotonic())
        tunnel = self._tunnels.get(tunnel_id)
        if tunnel is None:
            raise UnknownTunnel(f"no tunnel {tunnel_id} on this edge (or closed over a minute ago)")
        return tunnel

    def _pace(self, client: str) -> Callable[[int], Awaitable[None]] | None:
        """With a market, a tunnel's bytes wait for the free lane's turns of its client's
        address, like its chunks: tunnels draw from the same capacity."""
        market = self._edge.selling
        if market is None:
            return None
        return lambda size: market.send_free(client, size)

    # -- payment ---------------------------------------------------------------------

    def free_covers(self, client: str, units: int) -> bool:
        """Whether the free allowance (or a zero price) would pay for ``units`` now."""
        cost = units * self.unit
        return self.unit_price == 0 or self._edge.free.left(client, time.time()) >= cost

    def take_free(self, client: str, units: int) -> bool:
        if self.unit_price == 0 or self._edge.free.take(client, units * self.unit, time.time()):
            self._edge.metrics.tunnel_units.labels("free").inc(units)
            return True
        return False

    async def charge(self, voucher: bytes | None, client: str, units: int) -> str:
        """Return how ``units`` were paid once they are (the voucher stored durably first)."""
        metrics = self._edge.metrics
        if voucher is None:
            if self.take_free(client, units):
                return "free"
            raise PaymentRequired(
                f"{units} unit(s) of {self.unit} bytes cost {units * self.unit_price}; "
                "pay with an Atlas-Voucher"
            )
        try:
            await self._edge.payments.charge(voucher, None, units * self.unit_price,
                                             int(time.time()))  # fmt: skip
        except Refusal as exc:
            metrics.vouchers.labels(exc.code).inc()
            raise
        metrics.vouchers.labels("accepted").inc()
        metrics.tunnel_units.labels("voucher").inc(units)
        return "voucher"

    # -- internals -------------------------------------------------------------------

    def _unhold(self, client: str) -> None:
        self._held -= 1
        left = self._per_client.get(client, 0) - 1
        if left > 0:
            self._per_client[client] = left
        else:
            self._per_client.pop(client, None)

    def _purge(self, now: float) -> None:
        while self._closed and now - self._closed[0][0] >= CLOSED_KEPT:
            _, tunnel_id = self._closed.popleft()
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is not None and not tunnel.open:
                del self._tunnels[tunnel_id]


TUNNELS = web.AppKey("tunnels", TunnelBook)
