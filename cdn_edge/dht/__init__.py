"""The edge in the BitTorrent DHT: its signed advert and its announces (docs/edge.md, Discovery).

The DHT is the one inside the edge's libtorrent session (:mod:`cdn_edge.torrent`);
:mod:`cdn_edge.dht.settings` says how it is configured (bootstrap nodes named by the
operator only, private addresses only when allowed), :mod:`cdn_edge.dht.terms` what
the advert says, :mod:`cdn_edge.dht.publisher` when it is put and what is announced.
"""

from cdn_edge.dht.join import dht_jobs
from cdn_edge.dht.publisher import DhtPublisher
from cdn_edge.dht.settings import dht_address, dht_settings
from cdn_edge.dht.terms import Terms, edge_terms

__all__ = ["DhtPublisher", "Terms", "dht_address", "dht_jobs", "dht_settings", "edge_terms"]
