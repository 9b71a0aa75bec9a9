"""Where a requester starts with the DHT: bootstrap nodes as settings name them.

``atlas fetch --bootstrap`` and ``atlas proxy --bootstrap`` give ``HOST:PORT[,...]``:
:func:`edges_and_finder` opens one :class:`~requester.discovery.Discovery` through
those nodes for as long as the program runs, lists the edges when none was named
(``--edge``), and hands its :meth:`~requester.discovery.Discovery.providers_for` to
the SDK's downloads, so providers found in the DHT join them as trackers' do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from requester.dht_nodes import nodes_text, parse_nodes
from requester.discovery import LOOKUP_WAIT, Discovery, NoEdgeFound
from requester.protocol import ManifestHead

Finder = Callable[[ManifestHead], Coroutine[Any, Any, list[str]]]
"""What ``AtlasClient(finder=...)`` takes: more providers of a head's content."""


async def edges_and_finder(
    stack: AsyncExitStack, edges: Sequence[str], bootstrap: str, session: aiohttp.ClientSession
) -> tuple[list[str], Finder | None]:
    """The edges to ask (``edges``, else those the DHT lists through ``bootstrap``) and,
    with a bootstrap, the DHT's finder for the downloads; the DHT node lives as long as
    ``stack``. :class:`NoEdgeFound` when neither names an edge."""
    if not bootstrap:
        return list(edges), None
    dht = await stack.enter_async_context(discovery_for(bootstrap, session))
    return list(edges) or await listed_edges(dht), dht.providers_for


def discovery_for(bootstrap: str, session: aiohttp.ClientSession) -> Discovery:
    """A :class:`Discovery` through ``bootstrap`` (``HOST:PORT,...``; ValueError when
    malformed). Private addresses count only when every bootstrap node is private itself:
    a requester told to use a local network may find local edges, no other."""
    nodes = parse_nodes(bootstrap)
    local = all(_private(host) for host, _ in nodes)
    loopback = all(host == "localhost" or _loopback(host) for host, _ in nodes)
    listen = "127.0.0.1:0" if loopback else "0.0.0.0:0"
    return Discovery(nodes, session, allow_private=local, listen=listen)


async def edges_through(bootstrap: str, session: aiohttp.ClientSession) -> list[str]:
    """URLs of the edges the DHT lists through ``bootstrap`` (``HOST:PORT,...``)."""
    async with discovery_for(bootstrap, session) as dht:
        return await listed_edges(dht)


async def listed_edges(dht: Discovery, wait: float = LOOKUP_WAIT) -> list[str]:
    """URLs of the edges ``dht`` lists, cheapest reserve first; :class:`NoEdgeFound`
    when none has a valid advert."""
    found = await dht.edges(wait)
    if not found:
        where = nodes_text(dht.bootstrap)
        raise NoEdgeFound(f"no edge with a valid advert found through the DHT at {where}")
    found.sort(key=lambda f: (f.advert.market.clearing_price, f.advert.market.price_per_chunk))
    return [f.url for f in found]


def _private(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: its addresses are checked like any found


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
