"""Small edge parts with no I/O: free allowance, wire encoding choice, tracker."""

from __future__ import annotations

import os

import zstandard

from cdn_edge.free_allowance import FreeAllowance
from cdn_edge.tracker import MAX_PROVIDERS_PER_CONTENT, MAX_TTL, Tracker
from cdn_edge.wire_encoding import accepts_zstd, compressible, for_wire
from requester.protocol import NodeKey, ProviderRecord

NOW = 1_800_000_000


def test_free_allowance_is_per_requester_and_per_window() -> None:
    free = FreeAllowance(budget=1000, window=60)
    assert free.take("a", 600, NOW)
    assert not free.take("a", 600, NOW + 1)
    assert free.take("b", 600, NOW + 1)
    assert free.take("a", 400, NOW + 2)
    assert free.take("a", 600, NOW + 61)
    assert not FreeAllowance(budget=0, window=60).take("a", 1, NOW)


def test_only_text_like_types_are_compressed_for_clients_that_accept_zstd() -> None:
    assert compressible("text/html; charset=utf-8")
    assert compressible("application/json")
    assert not compressible("image/png")
    assert not compressible(None)
    assert accepts_zstd("gzip, zstd")
    assert accepts_zstd("zstd;q=0.5")
    assert not accepts_zstd("zstd;q=0")
    assert not accepts_zstd("gzip, br")


async def test_for_wire_compresses_only_when_it_saves() -> None:
    text = b"<p>hello atlas</p>" * 2000
    packed, encoding = await for_wire(text, "text/html", "zstd")
    assert encoding == "zstd"
    assert zstandard.ZstdDecompressor().decompress(packed) == text
    assert await for_wire(text, "text/html", "gzip") == (text, None)
    random = os.urandom(4096)
    assert await for_wire(random, "text/plain", "zstd") == (random, None)
    assert (await for_wire(text, "image/png", "zstd"))[1] is None


def test_tracker_keeps_verified_unexpired_records_within_caps() -> None:
    tracker = Tracker()
    cid = bytes(32)
    keys = [NodeKey(bytes([i]) * 32) for i in range(1, MAX_PROVIDERS_PER_CONTENT + 3)]
    for i, key in enumerate(keys):
        record = ProviderRecord.create(key, cid, f"http://127.0.0.1:{9000 + i}", NOW + 100 + i)
        assert tracker.add(record, NOW)
    held = tracker.providers(cid, NOW)
    assert len(held) == MAX_PROVIDERS_PER_CONTENT
    assert all(r.expires_at > NOW + 101 for r in held)
    assert tracker.providers(cid, NOW + 10_000) == []
    late = ProviderRecord.create(keys[0], cid, "http://127.0.0.1:1", NOW + MAX_TTL + 10)
    assert not tracker.add(late, NOW)
