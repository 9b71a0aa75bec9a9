"""Reaching a tunnel's target: check, resolve, require payment, connect, charge one unit.

Shared by the two ways a tunnel opens: a CONNECT with a voucher on the tunnel
port (:mod:`cdn_edge.tunnel.server`), and ``POST /v1/tunnels/{id}/open`` on
the HTTP port (:mod:`cdn_edge.tunnel.routes`), which answers before any byte
moves so a client learns a refusal (502 ``target_unreachable``...) while it
can still tell its own client.

Payment is charged after the connect succeeds, so a payer never pays for a
target that cannot be reached; a request without any voucher (and no free
allowance) is refused before the edge opens any connection.
"""

from __future__ import annotations

import asyncio
import socket

from cdn_edge.address_policy import BlockedAddress, check_address
from cdn_edge.config import EdgeConfig
from cdn_edge.tunnel.book import TunnelBook
from cdn_edge.tunnel.connect_request import ConnectRequest, TargetUnreachable, check_target
from cdn_edge.tunnel.relay import Streams
from requester.protocol import PaymentRequired

TARGET_BUFFER = 64 * 1024
"""Stream buffer towards a target; the client side uses MAX_HEAD, the head limit."""


async def open_target(book: TunnelBook, config: EdgeConfig, request: ConnectRequest,
                      client: str) -> Streams:  # fmt: skip
    """Check, resolve, connect, then charge one unit: the target, ready to relay."""
    allow_private = config.allow_private_origins
    check_target(request, allow_private=allow_private)
    timeout = config.tunnel_connect_timeout
    try:
        async with asyncio.timeout(timeout):
            addresses = await _resolve_checked(request.host, request.port, allow_private)
            if request.voucher is None and not book.free_covers(client, 1):
                raise PaymentRequired(
                    f"a tunnel unit ({book.unit} bytes) costs "
                    f"{book.unit_price}; send an Atlas-Voucher"
                )
            target = await _connect(addresses, request.port)
    except TimeoutError:
        raise TargetUnreachable(f"{request.target}: no connection within {timeout:g} s") from None
    try:
        await book.charge(request.voucher, client, 1)
    except BaseException:
        target[1].transport.abort()
        raise
    return target


async def _resolve_checked(host: str, port: int, allow_private: bool) -> list[str]:
    """Resolve once; refuse the target if any address it resolves to is off limits."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetUnreachable(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        try:
            check_address(address, allow_private=allow_private)
        except BlockedAddress as exc:
            raise BlockedAddress(f"host {host}", f"resolves to {exc.reason} {address}") from None
    if not addresses:
        raise TargetUnreachable(f"{host} resolves to no address")
    return addresses


async def _connect(addresses: list[str], port: int) -> Streams:
    """Connect to the first address that answers (the checked ones, never a new lookup)."""
    errors = []
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port, limit=TARGET_BUFFER)
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    raise TargetUnreachable(f"cannot connect to port {port}: {'; '.join(errors)}")
