"""What every Atlas listener allows one connection and one address: a header read timeout
and a cap on open connections per address.

Without them a stranger keeps a server's sockets by opening connections and sending a
request head a byte at a time (slowloris). The edge, the ledger, the proxy's API (aiohttp,
:mod:`requester.guarded_server`) and the proxy's mitmproxy port (an addon in ``proxy/``)
all apply the same policy, so it lives here in the SDK: the edge and the proxy may import
the SDK but not each other.

- A request head (request line and headers) must arrive whole within ``header_timeout``
  seconds of the connection opening, or of its first byte on a kept-alive connection;
  otherwise the connection is closed. Bodies and responses are not timed by this.
- An address may hold ``max_per_address`` connections at once; more are closed as soon
  as they open. An address is an IPv4 address (/32) or an IPv6 /64 (one host's usual
  allocation, so a host cannot dodge the cap by cycling its interface identifiers).

Every server declares the two as settings (``--header-timeout``,
``--max-connections-per-address``) with :mod:`requester.settings_spec`'s helpers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

log = logging.getLogger(__name__)
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_PER_ADDRESS = 256
"""Generous for loopback, where the load tests run every user from 127.0.0.1."""
HEADER_TIMEOUT_ENV = "ATLAS_HEADER_TIMEOUT"
MAX_PER_ADDRESS_ENV = "ATLAS_MAX_CONNECTIONS_PER_ADDRESS"


@dataclass(frozen=True)
class ListenerLimits:
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds a client has to send a whole request head."""
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    """Connections one address (IPv4 /32, IPv6 /64) may hold open at once."""


DEFAULT_LIMITS = ListenerLimits()


def address_key(host: str) -> str:
    """The address a connection counts against: the IPv4 address, or the IPv6 /64.

    An IPv4-mapped IPv6 address counts as its IPv4 address; a peer that is not an IP
    address at all (a Unix socket) counts as itself.
    """
    try:
        ip = ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ip_network(f"{ip}/64", strict=False))
    return str(ip)


def peer_host(peername: object) -> str:
    """The host part of a socket's peer name (a tuple for TCP), as text."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername)


class AddressCounter:
    """Open connections per address, and the decision to admit one more.

    One per listener. Entries go when their count drops to zero, so the table holds at
    most the addresses with a connection open.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``: its key, or None if over the cap."""
        key = address_key(host)
        held = self._open.get(key, 0)
        if held >= self.cap:
            log.debug("refused a connection from %s: %d open, cap %d", key, held, self.cap)
            return None
        self._open[key] = held + 1
        return key

    def release(self, key: str) -> None:
        held = self._open.get(key, 0) - 1
        if held > 0:
            self._open[key] = held
        else:
            self._open.pop(key, None)

    def open_from(self, host: str) -> int:
        return self._open.get(address_key(host), 0)
