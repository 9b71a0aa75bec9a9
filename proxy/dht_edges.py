"""``atlas proxy --bootstrap HOST:PORT[,...]``: edges and providers found through the DHT.

The proxy runs one read-only DHT node (:class:`requester.discovery.Discovery`) for as
long as it runs. The edges it lists join the configured ones (with no ``--edge``, they
are the only ones) at start and at every health check, so an edge started later is
used too; each download also takes the providers the DHT names for its content (the
origin edge from its advert, and edges announcing it), as ``atlas fetch --bootstrap``
does. Requests that come while no edge is known are answered ``503 no_edge_found``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack

import aiohttp

from proxy.state import ProxyState, add_found_edges
from requester.dht_bootstrap import discovery_for, listed_edges

FIRST_LOOK = 10.0
"""Seconds the proxy looks for edges before it says it is ready (an edge's advert is
in the DHT about a second after the edge is)."""


async def join_dht(
    state: ProxyState, bootstrap: str, session: aiohttp.ClientSession, stack: AsyncExitStack
) -> None:
    """Open the DHT node and look for edges until one is found or :data:`FIRST_LOOK` ends."""
    dht = await stack.enter_async_context(discovery_for(bootstrap, session))
    state.finder = dht.providers_for
    state.find_edges = lambda: listed_edges(dht, wait=2.0)
    deadline = time.monotonic() + FIRST_LOOK
    while await add_found_edges(state) == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)  # (polling the DHT itself: no event to wait on)
    if not state.edges:
        print(f"atlas proxy: no edge found through the DHT at {bootstrap} yet; still looking",
              file=sys.stderr)  # fmt: skip
