"""Joining the DHT once the edge's parts are up (called by cdn_edge/app.py)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from cdn_edge.dht.node_state import keep_state, state_path
from cdn_edge.dht.publisher import DhtPublisher
from cdn_edge.dht.settings import dht_address
from cdn_edge.dht.siblings import sibling_jobs
from cdn_edge.dht.terms import edge_terms
from cdn_edge.edge_state import Edge
from cdn_edge.torrent import TorrentSession


async def dht_jobs(
    edge: Edge, torrents: TorrentSession | None, tunnel_url: Callable[[], str | None]
) -> list[Coroutine[Any, Any, None]]:
    """With ``--dht`` (``torrents`` given): note the edge's DHT address (``/v1/info``, the
    ready line) and return the loops to run beside the edge (the publisher's, and the one
    keeping its node id in the data dir); else nothing."""
    if torrents is None:
        return []
    edge.dht_address = await dht_address(edge.config, torrents)
    publisher = DhtPublisher(
        lambda: torrents.lt_session, edge.identity.node,
        lambda: edge_terms(edge, tunnel_url()), edge.served,
    )  # fmt: skip
    keeping = keep_state(lambda: torrents.lt_session, state_path(edge.config.data_dir))
    return [publisher.run(), keeping, *sibling_jobs(edge, torrents)]
