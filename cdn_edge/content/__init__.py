"""Content the edge serves: fetched from an origin (or a torrent, or another edge),
cut into signed chunks, stored, and answered from its cache while it is fresh.

:mod:`cdn_edge.content.service` is the entry point the routes use; the origin
fetcher with its SSRF guard, decoders and errors, the HTTP caching rules, the
chunk store and its index, and replication from other edges live beside it.
"""
