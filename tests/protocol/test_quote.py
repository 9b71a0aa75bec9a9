"""Quotes: signed prices, their wire form, validity windows and chunk prices."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    ANY_CONTENT,
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    Asset,
    InvalidSignature,
    MalformedMessage,
    NodeKey,
    PayerKey,
    PaymentDomain,
    ProtocolError,
    Quote,
    QuoteExpired,
    TronAddress,
)
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.quote import MAX_INTERVAL, MIB, QUOTE_MAGIC, QUOTE_SIZE
from tests.conftest import EDGE_SEED, NOW, OTHER_EDGE_SEED, PAYEE_SECRET, make_quote
from tests.protocol.support import assert_every_flip_refused

EDGE = NodeKey(EDGE_SEED)
OTHER = NodeKey(OTHER_EDGE_SEED)
PAYEE = PayerKey(PAYEE_SECRET).address
QUOTE = make_quote(EDGE, PAYEE)
LOCAL = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)


@st.composite
def quotes(draw: st.DrawFn) -> Quote:
    valid_from = draw(st.integers(0, U64_MAX - 1))
    return make_quote(
        EDGE,
        TronAddress(b"\x41" + draw(st.binary(min_size=20, max_size=20))),
        asset=draw(st.sampled_from([BTT, BTT_LEGACY, BTT_LOCAL])),
        domain=PaymentDomain(
            draw(st.integers(0, U64_MAX)), draw(st.binary(min_size=20, max_size=20))
        ),
        content_id=draw(st.one_of(st.just(ANY_CONTENT), st.binary(min_size=32, max_size=32))),
        price_per_chunk=draw(st.integers(0, U128_MAX)),
        price_per_mib=draw(st.integers(0, U128_MAX)),
        interval=draw(st.integers(1, MAX_INTERVAL)),
        valid_from=valid_from,
        valid_until=draw(st.integers(valid_from + 1, U64_MAX)),
    )


@settings(max_examples=150, deadline=None)
@given(quotes())
def test_round_trip(quote: Quote) -> None:
    data = quote.encode()
    assert len(data) == QUOTE_SIZE == 234
    assert data.startswith(QUOTE_MAGIC)
    decoded = Quote.decode(data)
    assert decoded == quote
    assert decoded.encode() == data
    quote.edge_id.verify(data[:-64], data[-64:], "quote")


def test_layout() -> None:
    data = QUOTE.encode()
    assert data[:4] == b"ATQ\x01"
    assert data[4:36] == EDGE.node_id.raw
    assert data[36:57] == PAYEE.raw
    assert data[57] == BTT_LOCAL.code
    assert data[58:66] == LOCAL_CHAIN_ID.to_bytes(8, "big")
    assert data[66:86] == LOCAL_LEDGER_CONTRACT
    assert data[86:118] == ANY_CONTENT == bytes(32)
    assert int.from_bytes(data[118:134], "big") == 1000
    assert int.from_bytes(data[134:150], "big") == 10**12
    assert int.from_bytes(data[150:154], "big") == 8
    assert int.from_bytes(data[154:162], "big") == NOW
    assert int.from_bytes(data[162:170], "big") == NOW + 3600


def test_chunk_price_rounds_up_per_mib() -> None:
    quote = make_quote(EDGE, PAYEE, price_per_chunk=7, price_per_mib=MIB)
    assert quote.chunk_price(0) == 7
    assert quote.chunk_price(1) == 8
    assert quote.chunk_price(MIB) == 7 + MIB
    odd = make_quote(EDGE, PAYEE, price_per_chunk=0, price_per_mib=3)
    assert odd.chunk_price(1) == 1  # ceil(3 / 2^20)
    assert odd.chunk_price(MIB) == 3
    assert odd.chunk_price(MIB + 1) == 4
    with pytest.raises(MalformedMessage, match="negative size"):
        odd.chunk_price(-1)


@settings(max_examples=300)
@given(st.integers(0, U128_MAX), st.integers(0, U128_MAX), st.integers(0, 1 << 40))
def test_chunk_price_is_exact_ceiling(per_chunk: int, per_mib: int, wire: int) -> None:
    quote = Quote(
        QUOTE.edge_id, PAYEE, BTT, LOCAL, ANY_CONTENT, per_chunk, per_mib, 1, 0, 1, bytes(64)
    )
    price = quote.chunk_price(wire)
    variable = price - per_chunk
    assert variable * MIB >= wire * per_mib
    assert (variable - 1) * MIB < wire * per_mib or variable == 0


def test_validity_window() -> None:
    QUOTE.check_valid(NOW)
    QUOTE.check_valid(NOW + 3599)
    with pytest.raises(QuoteExpired, match=f"quote valid from {NOW} until {NOW + 3600}"):
        QUOTE.check_valid(NOW + 3600)
    with pytest.raises(QuoteExpired) as info:
        QUOTE.check_valid(NOW - 1)
    assert info.value.status == 402


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"interval": 0}, "payment interval 0 not in \\[1, 4096\\]"),
        ({"interval": MAX_INTERVAL + 1}, "payment interval 4097"),
        ({"valid_until": NOW}, "validity window is empty"),
        ({"valid_until": NOW - 1}, "validity window is empty"),
        ({"price_per_chunk": U128_MAX + 1}, "does not fit in 128 bits"),
        ({"price_per_mib": -1}, "does not fit in 128 bits"),
        ({"content_id": bytes(31)}, "expected 32 bytes"),
    ],
)
def test_create_refuses(overrides: dict[str, int | bytes], message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        make_quote(EDGE, PAYEE, **overrides)  # type: ignore[arg-type]


def _resign(body: bytes, key: NodeKey = EDGE) -> bytes:
    return body + key.sign(body)


def test_decode_refuses_bad_fields_even_when_signed() -> None:
    body = QUOTE.encode()[:-64]
    interval_at, until_at = 150, 162
    zero_interval = body[:interval_at] + bytes(4) + body[interval_at + 4 :]
    with pytest.raises(MalformedMessage, match="payment interval 0"):
        Quote.decode(_resign(zero_interval))
    big_interval = (
        body[:interval_at] + (MAX_INTERVAL + 1).to_bytes(4, "big") + body[interval_at + 4 :]
    )
    with pytest.raises(MalformedMessage, match="payment interval 4097"):
        Quote.decode(_resign(big_interval))
    empty = body[:until_at] + NOW.to_bytes(8, "big")
    with pytest.raises(MalformedMessage, match="validity window is empty"):
        Quote.decode(_resign(empty))
    bad_asset = body[:57] + b"\x09" + body[58:]
    with pytest.raises(MalformedMessage, match="unknown asset code 9"):
        Quote.decode(_resign(bad_asset))
    bad_payee = body[:36] + b"\x42" + body[37:]
    with pytest.raises(MalformedMessage, match="TRON address"):
        Quote.decode(_resign(bad_payee))
    with pytest.raises(InvalidSignature, match="quote: signature does not verify"):
        Quote.decode(_resign(body, OTHER))


def test_decode_refuses_wrong_size_and_magic() -> None:
    data = QUOTE.encode()
    with pytest.raises(MalformedMessage, match="quote must be 234 bytes, got 235"):
        Quote.decode(data + b"\x00")
    with pytest.raises(MalformedMessage, match="quote must be 234 bytes, got 233"):
        Quote.decode(data[:-1])
    with pytest.raises(MalformedMessage, match="bad magic or version"):
        Quote.decode(b"ATQ\x02" + data[4:])


def test_every_byte_is_protected() -> None:
    assert_every_flip_refused(QUOTE.encode(), Quote.decode)


@settings(max_examples=20, deadline=None)
@given(quotes(), st.data())
def test_random_flips_in_random_quotes(quote: Quote, data: st.DataObject) -> None:
    encoded = quote.encode()
    index = data.draw(st.integers(0, len(encoded) - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        Quote.decode(encoded[:index] + bytes([encoded[index] ^ mask]) + encoded[index + 1 :])


@settings(max_examples=500)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(min_size=QUOTE_SIZE, max_size=QUOTE_SIZE),
        st.binary(min_size=QUOTE_SIZE - 4, max_size=QUOTE_SIZE - 4).map(lambda b: QUOTE_MAGIC + b),
        st.binary(min_size=198, max_size=198).map(lambda b: QUOTE_MAGIC + EDGE.node_id.raw + b),
    )
)
def test_decode_only_raises_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Quote.decode(data)


def test_quotes_differ_per_field() -> None:
    variants: list[Quote] = [
        make_quote(OTHER, PAYEE),
        make_quote(EDGE, PayerKey(bytes([0x44] * 32)).address),
        make_quote(EDGE, PAYEE, asset=BTT),
        make_quote(EDGE, PAYEE, domain=PaymentDomain(TRON_MAINNET_CHAIN_ID, LOCAL_LEDGER_CONTRACT)),
        make_quote(EDGE, PAYEE, content_id=b"\x01" * 32),
        make_quote(EDGE, PAYEE, price_per_chunk=1001),
        make_quote(EDGE, PAYEE, price_per_mib=1),
        make_quote(EDGE, PAYEE, interval=9),
        make_quote(EDGE, PAYEE, valid_from=NOW + 1),
        make_quote(EDGE, PAYEE, valid_until=NOW + 1),
    ]
    bodies = {QUOTE.encode()[:-64]} | {v.encode()[:-64] for v in variants}
    assert len(bodies) == len(variants) + 1


@pytest.mark.parametrize("asset", [BTT, BTT_LEGACY, BTT_LOCAL])
def test_every_asset_round_trips(asset: Asset) -> None:
    quote = make_quote(EDGE, PAYEE, asset=asset)
    assert Quote.decode(quote.encode()).asset is asset
