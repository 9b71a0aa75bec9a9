"""When an edge puts its advert and what it announces in the DHT.

- The advert (BEP 44, the node key, salt ``atlas.node.v1``) is put at start, every
  :data:`ADVERT_REFRESH` seconds, and as soon as the terms change (a price, a URL).
- The rendezvous key (:data:`~requester.protocol.dht.RENDEZVOUS_TARGET`) is announced
  with the edge's HTTP port, so anyone who knows one DHT node can list edges.
- Content served in the last hour is announced under ``content_target(content_id)``,
  at most :data:`MAX_CONTENT_ANNOUNCES` per :data:`ANNOUNCE_INTERVAL`, one per :data:`CONTENT_GAP`,
  the most recently served first: a busy edge does not flood the DHT.

While the routing table is still small (a fresh edge, a new network) everything is
put and announced again each time it grows: what went to the only node known at
first may be far from where lookups end.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable
from urllib.parse import urlsplit

import libtorrent as lt

from cdn_edge.dht.terms import Terms
from requester.dht_keys import put_advert
from requester.protocol import NodeKey
from requester.protocol.dht import RENDEZVOUS_TARGET, content_target

log = logging.getLogger(__name__)

ADVERT_REFRESH = 1800.0
ADVERT_LIFETIME = 2 * 3600
ANNOUNCE_INTERVAL = 900.0
"""libtorrent forgets an announced peer after 30 minutes; announce twice as often."""
SERVED_WINDOW = 3600.0
MAX_CONTENT_ANNOUNCES = 128
"""Content announces per :data:`ANNOUNCE_INTERVAL`."""
CONTENT_GAP = 2.0
"""Seconds between two content announces. An announce sends each of the nodes nearest its
key two queries, and in a small network those are the same few nodes every time: libtorrent
blocks an address sending a node over 5 queries a second (``dht_block_ratelimit``) for 5
minutes. 128 announces take about 4 of the 15 minutes."""
WARM_NODES = 32
"""Below this many routing-table nodes at the last put, a bigger table means putting again."""
WARM_GAP = 2.0
TICK = 1.0


class DhtPublisher:
    """Keeps the edge's advert and announces current; :meth:`run` until cancelled."""

    def __init__(
        self, session: Callable[[], lt.session], key: NodeKey, terms: Callable[[], Terms | None],
        served: dict[bytes, float],
    ) -> None:  # fmt: skip
        self._session = session
        self._key = key
        self._terms = terms
        self.served = served
        """Content id -> when it was last served (monotonic); the chunk route fills it."""
        self._announced: dict[bytes, float] = {}
        self._budget = MAX_CONTENT_ANNOUNCES
        self._budget_reset = 0.0
        self._next_content = 0.0
        self._published: Terms | None = None
        self._advert_due = 0.0
        self._rendezvous_due = 0.0
        self._nodes_at_put = 0
        self._put_at = -WARM_GAP
        self.puts = 0
        """Adverts put since start (tests and /metrics read it)."""

    async def run(self) -> None:
        while True:
            try:
                self.tick(time.monotonic(), int(time.time()))
            except Exception:
                log.exception("DHT publishing")
            await asyncio.sleep(TICK)

    def tick(self, now: float, wall: int) -> None:
        terms = self._terms()
        if terms is None:
            return
        session = self._session()
        nodes = _node_count(session)
        warming = (
            nodes > self._nodes_at_put
            and self._nodes_at_put < WARM_NODES
            and now - self._put_at >= WARM_GAP
        )
        if warming or terms != self._published or now >= self._advert_due:
            put_advert(session, self._key, terms.advert(self._key, wall, ADVERT_LIFETIME))
            self._published, self._advert_due = terms, now + ADVERT_REFRESH
            self._nodes_at_put, self._put_at = nodes, now
            self.puts += 1
        url = urlsplit(terms.http_urls[0])
        port = url.port or (443 if url.scheme == "https" else 80)
        if warming or now >= self._rendezvous_due:
            session.dht_announce(lt.sha1_hash(RENDEZVOUS_TARGET), port, 0)
            self._rendezvous_due = now + ANNOUNCE_INTERVAL
            if warming:
                self._announced.clear()  # announce served content again too
        self._announce_content(session, port, now)

    def _announce_content(self, session: lt.session, port: int, now: float) -> None:
        if now >= self._budget_reset:
            self._budget, self._budget_reset = MAX_CONTENT_ANNOUNCES, now + ANNOUNCE_INTERVAL
        for cid in [c for c, at in self.served.items() if now - at > SERVED_WINDOW]:
            del self.served[cid]
            self._announced.pop(cid, None)
        due = [c for c in self.served if now - self._announced.get(c, -ANNOUNCE_INTERVAL)
               >= ANNOUNCE_INTERVAL]  # fmt: skip
        if due and self._budget > 0 and now >= self._next_content:
            cid = max(due, key=self.served.__getitem__)
            session.dht_announce(lt.sha1_hash(content_target(cid)), port, 0)
            self._announced[cid] = now
            self._budget -= 1
            self._next_content = now + CONTENT_GAP


def _node_count(session: lt.session) -> int:
    with warnings.catch_warnings():  # status() is deprecated; its dht_nodes is what we need
        warnings.simplefilter("ignore", DeprecationWarning)
        return int(session.status().dht_nodes)
