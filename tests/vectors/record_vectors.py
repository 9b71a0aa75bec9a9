"""The provider record vectors: the "provider_records" part of discovery.json.

Imported by generate.py, which writes the file; tests/protocol/test_record_vectors.py
checks the code against it without importing this module.
"""

from __future__ import annotations

from typing import Any

from requester.protocol import NodeKey, ProviderRecord
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.node_advert import Market
from requester.protocol.provider_record import MAX_PROVIDER_URL, MAX_RECORD_BYTES

EDGE_SEED = bytes(range(32))
EXPIRES_AT = 1_700_001_800
MIB = 1 << 20


def _terms_json(m: Market | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "reserve": str(m.reserve), "clearing_price": str(m.clearing_price),
        "price_per_chunk": str(m.price_per_chunk), "capacity": str(m.capacity),
        "slots": m.slots, "free_slots": m.free_slots, "round_seconds": m.round_seconds,
    }  # fmt: skip


def _record_json(name: str, record: ProviderRecord) -> dict[str, Any]:
    encoded = record.encode()
    return {
        "name": name,
        "inputs": {
            "content_id": record.content_id.hex(),
            "url": record.url,
            "expires_at": str(record.expires_at),
            "market": _terms_json(record.market),
        },
        "node_id": record.node_id.hex(),
        "body": encoded[:-64].hex(),
        "signature": record.signature.hex(),
        "encoded": encoded.hex(),
        "size": len(encoded),
    }


def record_vectors(content_id: bytes) -> dict[str, Any]:
    key = NodeKey(EDGE_SEED)
    longest = "https://edge.example/" + "a" * (MAX_PROVIDER_URL - 21)
    specs: list[tuple[str, bytes, str, int, Market | None]] = [
        ("market", content_id, "http://127.0.0.1:8080", EXPIRES_AT,
         Market(10**18, 4 * 10**18, 0, 8 * MIB, 8, 2, 10)),
        ("no-market", content_id, "http://127.0.0.1:8080", EXPIRES_AT,
         Market(10**15, 10**15, 0, 0, 0, 0, 0)),
        ("largest", bytes(range(32)), longest, U64_MAX,
         Market(1, U128_MAX, U128_MAX, U64_MAX, 65535, 65535, 65535)),
        ("version-1", content_id, "http://127.0.0.1:8080", EXPIRES_AT, None),
    ]  # fmt: skip
    records = [
        _record_json(name, ProviderRecord.create(key, cid, url, expires, market))
        for name, cid, url, expires, market in specs
    ]
    assert records[2]["size"] == MAX_RECORD_BYTES
    return {
        "description": (
            "Provider records (ATP\\x02; docs/protocol.md 12.4), what trackers list: Ed25519 "
            "over 'body' (encoded minus the signature) by the node key (seed 00..1f). "
            "'market' holds the edge's terms as of signing, laid out as a node advert's; "
            "'largest' is the largest record there is (MAX_RECORD_BYTES). 'version-1' is an "
            "ATP\\x01 record (no terms), which decoders still accept: its market is null. "
            "Amounts, capacity and expires_at are decimal strings."
        ),
        "records": records,
    }
