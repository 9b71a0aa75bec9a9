"""Provider records (``ATP\\x02`` with market terms, ``ATP\\x01`` without): the vectors of
tests/vectors/discovery.json rebuilt and decoded, the layout of docs/protocol.md 12.4 by
hand, and every malformed field refused with the protocol's errors."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    InvalidSignature,
    MalformedMessage,
    NodeKey,
    ProtocolError,
    ProviderRecord,
)
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.node_advert import Market
from requester.protocol.provider_record import MAX_PROVIDER_URL, MAX_RECORD_BYTES

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "discovery.json").read_text("utf-8")
)["provider_records"]["records"]
SEED = bytes(range(32))
KEY = NodeKey(SEED)
URL = "http://127.0.0.1:8080"
TERMS = Market(10**18, 4 * 10**18, 0, 8 << 20, 8, 2, 1)


def _market(doc: dict[str, Any] | None) -> Market | None:
    if doc is None:
        return None
    return Market(
        int(doc["reserve"]), int(doc["clearing_price"]), int(doc["price_per_chunk"]),
        int(doc["capacity"]), doc["slots"], doc["free_slots"], doc["round_seconds"],
    )  # fmt: skip


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vector_rebuilds_and_decodes(vector: dict[str, Any]) -> None:
    i = vector["inputs"]
    market = _market(i["market"])
    made = ProviderRecord.create(
        KEY, bytes.fromhex(i["content_id"]), i["url"], int(i["expires_at"]), market
    )
    encoded = bytes.fromhex(vector["encoded"])
    assert made.encode() == encoded
    assert len(encoded) == vector["size"] <= MAX_RECORD_BYTES
    decoded = ProviderRecord.decode(encoded)
    assert decoded == made and decoded.market == market
    # By hand: magic, content id, node id, text16 URL, u64 expiry, the terms, signature.
    url = i["url"].encode()
    layout = b"ATP\x02" if market else b"ATP\x01"
    layout += bytes.fromhex(i["content_id"]) + KEY.node_id.raw
    layout += len(url).to_bytes(2, "big") + url + int(i["expires_at"]).to_bytes(8, "big")
    if market is not None:
        for amount in (market.reserve, market.clearing_price, market.price_per_chunk):
            layout += amount.to_bytes(16, "big")
        layout += market.capacity.to_bytes(8, "big")
        for small in (market.slots, market.free_slots, market.round_seconds):
            layout += small.to_bytes(2, "big")
    assert encoded[:-64] == layout == bytes.fromhex(vector["body"])
    nacl.signing.VerifyKey(KEY.node_id.raw).verify(layout, bytes.fromhex(vector["signature"]))


def test_the_largest_record_is_the_limit() -> None:
    sizes = {v["name"]: v["size"] for v in VECTORS}
    assert sizes["largest"] == MAX_RECORD_BYTES
    assert sizes["version-1"] == MAX_RECORD_BYTES - 62 - (MAX_PROVIDER_URL - len(URL))


def test_a_version_1_record_has_no_terms() -> None:
    old = ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000)
    assert old.encode()[:4] == b"ATP\x01"
    assert ProviderRecord.decode(old.encode()).market is None


def test_over_the_limit_is_refused_before_parsing() -> None:
    largest = bytes.fromhex(next(v["encoded"] for v in VECTORS if v["name"] == "largest"))
    with pytest.raises(MalformedMessage, match="too long"):
        ProviderRecord.decode(largest + b"\x00")


@pytest.mark.parametrize(
    ("terms", "why"),
    [
        (Market(5, 4, 0, 8 << 20, 8, 2, 1), "clearing price below the reserve"),
        (Market(1, 1, 0, 0, 8, 0, 0), "without a market"),
        (Market(1, 1, 0, 0, 0, 0, 10), "without a market"),
        (Market(1, 1, 0, 8 << 20, 8, 0, 1), "1 <= free_slots <= slots"),
        (Market(1, 1, 0, 8 << 20, 2, 3, 1), "1 <= free_slots <= slots"),
        (Market(1, 1, 0, 8 << 20, 8, 2, 0), "round_seconds >= 1"),
    ],
)
def test_terms_no_edge_publishes_are_refused(terms: Market, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000, terms)
    # Signed anyway (a hostile announcer's own encoder): the decoder refuses it too.
    good = ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000, TERMS).encode()
    offset = 4 + 32 + 32 + 2 + len(URL) + 8
    fields = b"".join(
        [a.to_bytes(16, "big") for a in (terms.reserve, terms.clearing_price, 0)]
        + [terms.capacity.to_bytes(8, "big")]
        + [s.to_bytes(2, "big") for s in (terms.slots, terms.free_slots, terms.round_seconds)]
    )
    body = good[:offset] + fields
    with pytest.raises(MalformedMessage, match=r"^provider record: "):
        ProviderRecord.decode(body + KEY.sign(body))


@pytest.mark.parametrize("cut", [1, 2, 10, 62, 63, 64, 65, 100])
def test_a_cut_record_is_malformed(cut: int) -> None:
    data = ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000, TERMS).encode()
    with pytest.raises(MalformedMessage):
        ProviderRecord.decode(data[:-cut])


def test_terms_are_signed() -> None:
    data = bytearray(ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000, TERMS).encode())
    data[4 + 32 + 32 + 2 + len(URL) + 8 + 31] ^= 1  # the clearing price's last byte
    with pytest.raises(InvalidSignature):
        ProviderRecord.decode(bytes(data))


def test_a_version_1_record_relabelled_version_2_is_refused() -> None:
    old = ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000).encode()
    with pytest.raises(MalformedMessage):
        ProviderRecord.decode(b"ATP\x02" + old[4:])
    with pytest.raises(MalformedMessage, match="bad magic or version"):
        ProviderRecord.decode(b"ATP\x03" + old[4:])


_terms = st.one_of(
    st.builds(lambda r, extra, chunk: Market(r, r + extra, chunk, 0, 0, 0, 0),
              st.integers(0, U128_MAX // 2), st.integers(0, U128_MAX // 2),
              st.integers(0, U128_MAX)),
    st.builds(lambda r, extra, cap, slots, free, secs: Market(
        r, r + extra, 0, cap, slots, min(free, slots), secs),
        st.integers(0, U128_MAX // 2), st.integers(0, U128_MAX // 2), st.integers(1, U64_MAX),
        st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 65535)),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(terms=_terms, expires=st.integers(0, U64_MAX), port=st.integers(1, 65535))
def test_round_trip(terms: Market, expires: int, port: int) -> None:
    record = ProviderRecord.create(KEY, bytes(32), f"http://127.0.0.1:{port}", expires, terms)
    data = record.encode()
    assert len(data) <= MAX_RECORD_BYTES
    assert ProviderRecord.decode(data) == record
    assert record.node_id == KEY.node_id


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), flip=st.integers(0, 221), bit=st.integers(0, 7))
def test_hostile_bytes_raise_only_protocol_errors(data: bytes, flip: int, bit: int) -> None:
    for candidate in (data, b"ATP\x02" + data, _flipped(flip, bit)):
        with contextlib.suppress(ProtocolError):
            ProviderRecord.decode(candidate)


def _flipped(at: int, bit: int) -> bytes:
    data = bytearray(ProviderRecord.create(KEY, bytes(32), URL, 1_700_000_000, TERMS).encode())
    data[at % len(data)] ^= 1 << bit
    return bytes(data)
