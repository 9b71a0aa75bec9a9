"""libtorrent settings of an edge whose session joins the DHT.

- Bootstrap nodes are the operator's ``--dht-bootstrap`` and nothing else
  (libtorrent's default names a public host; empty means the edge waits to be
  contacted).
- The edge's private-address IP filter (cdn_edge/torrent/session.py) applies to
  the DHT as it does to peers unless ``--dht-allow-private``: then loopback and LAN
  nodes may be routed to, and libtorrent's one-node-per-IP rules, which would
  leave a network on one address (or one /24) with items on one or two nodes, go.
- On a private network a node may take 1000 queries a second from one address, not
  libtorrent's 5: a handful of nodes there answer every lookup and announce, and
  test requesters share an address with an edge.
- ``dht_upload_rate_limit`` is raised from libtorrent's 8000 bytes/s: above it a
  node silently drops incoming queries, and a few 1000-byte items reached it.
"""

from __future__ import annotations

import asyncio
import time

import libtorrent as lt

from cdn_edge.config import EdgeConfig
from cdn_edge.torrent import TorrentSession
from cdn_edge.torrent.errors import TorrentUnavailable

PRIVATE_BLOCK_RATELIMIT = 1000
"""Queries a second an address may send a node before it is blocked (libtorrent: 5)."""
DHT_UPLOAD_RATE = 256 * 1024
"""Bytes/s of DHT replies; BEP 44 items are up to 1000 bytes each."""


def dht_settings(config: EdgeConfig, pack: lt.settings_pack) -> lt.settings_pack:
    """``pack`` with the DHT's settings when ``--dht`` is on (else as it is)."""
    if config.dht:
        private = config.dht_allow_private
        pack["enable_dht"] = True
        pack["dht_bootstrap_nodes"] = config.dht_bootstrap
        pack["dht_upload_rate_limit"] = DHT_UPLOAD_RATE
        pack["apply_filter_to_dht"] = not private  # type: ignore[typeddict-unknown-key]
        pack["dht_restrict_routing_ips"] = not private
        pack["dht_restrict_search_ips"] = not private
        if private:  # a few nodes take every query of a small network: no 5 queries/s cap
            pack["dht_block_ratelimit"] = PRIVATE_BLOCK_RATELIMIT
    return pack


def listen_host(config: EdgeConfig) -> str:
    """The address libtorrent (so the DHT) listens on: ``--torrent-listen``'s, else ``--host``."""
    interfaces = config.torrent_listen or f"{config.host}:0"
    first = interfaces.split(",")[0]
    return first.rsplit(":", 1)[0]


async def dht_address(config: EdgeConfig, torrents: TorrentSession, wait: float = 10.0) -> str:
    """``HOST:PORT`` of the edge's DHT node, once libtorrent has bound its port."""
    deadline = time.monotonic() + wait
    # libtorrent binds asynchronously and says so in an alert the torrent pump owns: poll.
    while (port := torrents.listen_port) == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if port == 0:
        raise TorrentUnavailable("libtorrent bound no port for the DHT")
    return f"{listen_host(config)}:{port}"
