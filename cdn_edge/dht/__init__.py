"""The edge in the BitTorrent DHT: its signed advert and its announces (docs/edge.md, Discovery).

The DHT is the one inside the edge's libtorrent session (:mod:`cdn_edge.torrent`);
:mod:`cdn_edge.dht.settings` says how it is configured (bootstrap nodes named by the
operator only, private addresses only when allowed), :mod:`cdn_edge.dht.terms` what
the advert says, :mod:`cdn_edge.dht.publisher` when it is put and what is announced,
:mod:`cdn_edge.dht.node_state` how the node id survives a restart.
"""

from cdn_edge.dht.join import dht_jobs
from cdn_edge.dht.node_state import dht_state_opener
from cdn_edge.dht.publisher import DhtPublisher
from cdn_edge.dht.settings import dht_address, dht_settings
from cdn_edge.dht.terms import Terms, edge_terms

__all__ = [
    "DhtPublisher", "Terms", "dht_address", "dht_jobs", "dht_settings", "dht_state_opener",
    "edge_terms",
]  # fmt: skip
