"""A private BitTorrent DHT of libtorrent sessions on 127.0.0.1, for tests.

Every session listens on 127.0.0.1 with LSD, UPnP and NAT-PMP off and no
bootstrap nodes (libtorrent's default is a public host): sessions learn only
each other, through :func:`link`. Routing and search IP restrictions are off,
or items on one IP land on one or two nodes only (/work/shared/FIELD_NOTES.md).
``dht_upload_rate_limit`` is raised from its 8000 bytes/s: a node over it drops
incoming queries silently, and a few 1000-byte items were enough here to stall
the next lookup until its 5+ s timeout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import libtorrent as lt

T = TypeVar("T")


def dht_session() -> lt.session:
    return lt.session(
        {
            "enable_dht": True, "enable_lsd": False, "enable_upnp": False,
            "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
            "dht_bootstrap_nodes": "", "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False, "dht_upload_rate_limit": 1 << 20,
            "alert_mask": lt.alert.category_t.dht_notification,
        }
    )  # fmt: skip


@contextmanager
def private_dht(count: int) -> Iterator[list[lt.session]]:
    """``count`` sessions that know each other; they are gone when the block ends."""
    sessions = [dht_session() for _ in range(count)]
    try:
        link(sessions)
        yield sessions
    finally:
        for session in sessions:
            session.pause()
        sessions.clear()  # libtorrent stops a session when its last reference goes


def link(sessions: list[lt.session]) -> None:
    for session in sessions:
        for other in sessions:
            if other is not session:
                session.add_dht_node(("127.0.0.1", other.listen_port()))


def wait_alert(session: lt.session, take: Callable[[Any], T | None], timeout: float = 5) -> T:
    """The first non-None ``take(alert)``: alerts die at the next pop, so ``take`` copies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.wait_for_alert(100)
        for alert in session.pop_alerts():
            found = take(alert)
            if found is not None:
                return found
    raise TimeoutError(f"no matching alert within {timeout} s")


def krpc(port: int, query: bytes, args: dict[bytes, Any], timeout: float = 2) -> Any:
    """One raw KRPC query (BEP 5) to the DHT node on 127.0.0.1:``port``; its bdecoded answer.

    Sent read-only (BEP 43 ``ro``), or the node would add this short-lived socket to its
    routing table and later lookups would wait for it to time out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        message: dict[bytes, Any] = {b"t": b"at", b"y": b"q", b"q": query, b"a": args, b"ro": 1}
        sock.sendto(lt.bencode(message), ("127.0.0.1", port))
        data, _ = sock.recvfrom(65536)
    return lt.bdecode(data)
