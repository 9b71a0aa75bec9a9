"""Which URLs an edge announces to sibling caches: ContentIndex.fresh_urls, on a real
index and chunk store. Only sealed, storable content still fresh counts, each URL once,
the most recently used first; a torrent file's key is no URL, and a URL that went stale
or was evicted drops out, so it is not announced again."""

from __future__ import annotations

from pathlib import Path

from cdn_edge.content.chunk_store import ChunkStore
from cdn_edge.content.http_cache import CachePolicy
from cdn_edge.content.index import ContentIndex

NOW = 1_800_000_000.0


def policy(fresh_until: float, storable: bool = True) -> CachePolicy:
    return CachePolicy(storable, fresh_until, None, None, ())


def add(index: ContentIndex, n: int, url: str, fresh: CachePolicy, *, used: float,
        sealed: bool = True) -> bytes:  # fmt: skip
    cid = bytes([n]) * 32
    index.add_content(cid, url, f"key{n}", b"head", fresh, used)
    if sealed:
        index.seal(cid, b"seal", 0)
    return cid


def test_only_sealed_storable_fresh_urls_most_recently_used_first(tmp_path: Path) -> None:
    index = ContentIndex(tmp_path / "content.sqlite3", ChunkStore(tmp_path), 1 << 30)
    try:
        add(index, 1, "http://o/old", policy(NOW + 60), used=NOW - 30)
        add(index, 2, "http://o/new", policy(NOW + 60), used=NOW - 10)
        add(index, 3, "http://o/new", policy(NOW + 90), used=NOW - 20)  # a second variant
        add(index, 4, "http://o/stale", policy(NOW - 1), used=NOW - 5)
        add(index, 5, "http://o/private", policy(NOW + 60, storable=False), used=NOW - 5)
        add(index, 6, "http://o/live", policy(NOW + 60), used=NOW - 5, sealed=False)
        add(index, 7, "torrent:ab/file", policy(1e18), used=NOW - 5)
        evicted = add(index, 8, "https://o/evicted", policy(NOW + 60), used=NOW - 1)
        index.drop(evicted)

        assert index.fresh_urls(NOW, 10) == ["http://o/new", "http://o/old"]
        assert index.fresh_urls(NOW, 1) == ["http://o/new"]
        assert index.fresh_urls(NOW + 61, 10) == ["http://o/new"]  # its second variant
        assert index.fresh_urls(NOW + 91, 10) == []
    finally:
        index.close()
