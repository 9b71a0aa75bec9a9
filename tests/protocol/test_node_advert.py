"""Node adverts (ATN\\x01): round trip, the BEP 44 size limit, refusals field by field, expiry.

Malformed adverts are built by hand (``raw``), field by field from docs/protocol.md
section 12, and signed validly, so each refusal is the field check's and not the
signature's.
"""

from __future__ import annotations

from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    InvalidSignature,
    MalformedMessage,
    NodeKey,
    PayerKey,
    PaymentDomain,
    TronAddress,
    WrongBinding,
)
from requester.protocol.codec import U64_MAX, U128_MAX
from requester.protocol.dht import BEP44_MAX_VALUE, MAX_BEP44_STRING, bencoded_string
from requester.protocol.errors import AdvertExpired
from requester.protocol.node_advert import (
    ADVERT_SIGNING_TAG,
    MAX_ADVERT_BYTES,
    MAX_ADVERT_LIFETIME,
    MAX_ADVERT_URL,
    MAX_CLOCK_SKEW,
    Market,
    NodeAdvert,
)
from tests.conftest import EDGE_SEED, NOW, OTHER_EDGE_SEED, PAYEE_SECRET
from tests.protocol.support import assert_every_flip_refused

EDGE = NodeKey(EDGE_SEED)
OTHER = NodeKey(OTHER_EDGE_SEED)
PAYEE = PayerKey(PAYEE_SECRET).address
LOCAL = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
NO_MARKET = Market(1000, 1000, 5, 0, 0, 0, 0)
MARKET = Market(1000, 4000, 0, 8 << 20, 8, 2, 10)
FIXED = 233
"""Bytes of an advert with one HTTP URL, besides the text of its URLs (prefixes included)."""

DEFAULTS: dict[str, Any] = {
    "node_id": EDGE.node_id.raw, "issued_at": NOW, "expires_at": NOW + 3600,
    "payee": PAYEE.raw, "asset": 3, "chain_id": LOCAL_CHAIN_ID, "contract": LOCAL_LEDGER_CONTRACT,
    "reserve": 1000, "clearing": 4000, "per_chunk": 0, "capacity": 8 << 20, "slots": 8,
    "free_slots": 2, "round": 10, "urls": [b"http://127.0.0.1:8080"], "tunnel": b"",
}  # fmt: skip


def raw(magic: bytes = b"ATN\x01", key: NodeKey = EDGE, tag: bytes = ADVERT_SIGNING_TAG,
        count: int | None = None, **overrides: Any) -> bytes:  # fmt: skip
    """An advert encoded by hand per docs/protocol.md section 12, then signed."""
    f = DEFAULTS | overrides
    body: bytes = magic + f["node_id"] + f["issued_at"].to_bytes(8, "big")
    body += f["expires_at"].to_bytes(8, "big") + f["payee"] + bytes([f["asset"]])
    body += f["chain_id"].to_bytes(8, "big") + f["contract"]
    for name in ("reserve", "clearing", "per_chunk"):
        body += f[name].to_bytes(16, "big")
    body += f["capacity"].to_bytes(8, "big")
    body += b"".join(f[n].to_bytes(2, "big") for n in ("slots", "free_slots", "round"))
    body += bytes([len(f["urls"]) if count is None else count])
    for text in [*f["urls"], f["tunnel"]]:
        body += len(text).to_bytes(2, "big") + text
    return body + key.sign(tag + body)


def advert(**overrides: Any) -> NodeAdvert:
    args: dict[str, Any] = {
        "issued_at": NOW, "expires_at": NOW + 3600, "payee": PAYEE, "asset": BTT_LOCAL,
        "domain": LOCAL, "market": MARKET, "http_urls": ("http://127.0.0.1:8080",),
        "tunnel_url": None,
    }  # fmt: skip
    return NodeAdvert.create(EDGE, **(args | overrides))


def decode(data: bytes) -> NodeAdvert:
    return NodeAdvert.decode(data, NOW)


def test_round_trip_and_layout_by_hand() -> None:
    made = advert(tunnel_url="http://127.0.0.1:9090")
    data = made.encode()
    assert data == raw(tunnel=b"http://127.0.0.1:9090")
    assert len(data) == FIXED + len("http://127.0.0.1:8080") + len("http://127.0.0.1:9090")
    assert decode(data) == made
    assert made.tunnel_url == "http://127.0.0.1:9090"
    nacl.signing.VerifyKey(EDGE.node_id.raw).verify(
        b"atlas.node-advert.v1" + data[:-64], data[-64:]
    )


def test_an_advert_without_market_or_tunnel() -> None:
    made = advert(market=NO_MARKET, asset=BTT_LEGACY)
    assert decode(made.encode()) == made
    assert made.tunnel_url is None and made.market.capacity == 0


def _urls_for(size: int) -> tuple[tuple[str, ...], str]:
    """Two HTTP URLs and a tunnel URL whose advert is exactly ``size`` bytes."""
    room = size - FIXED
    first = "http://a.example/" + "x" * (MAX_ADVERT_URL - 17)
    second = "http://b.example/" + "y" * (MAX_ADVERT_URL - 17)
    tunnel_len = room - 2 * MAX_ADVERT_URL - 2
    return (first, second), "http://t.example/" + "z" * (tunnel_len - 17)


def test_the_bep44_limit_is_exact() -> None:
    """BEP 44 caps the bencoded value at 1000 bytes: '996:' + 996 bytes is 1000, 997 is 1001."""
    assert len(bencoded_string(bytes(996))) == BEP44_MAX_VALUE
    assert len(bencoded_string(bytes(997))) == BEP44_MAX_VALUE + 1
    assert MAX_ADVERT_BYTES == MAX_BEP44_STRING == 996


def test_a_996_byte_advert_is_accepted() -> None:
    urls, tunnel = _urls_for(996)
    made = advert(http_urls=urls, tunnel_url=tunnel)
    assert len(made.encode()) == 996
    assert decode(made.encode()) == made


def test_a_997_byte_advert_is_refused_both_ways() -> None:
    urls, tunnel = _urls_for(997)
    with pytest.raises(MalformedMessage, match=r"997 bytes; a BEP 44 value holds at most 996"):
        advert(http_urls=urls, tunnel_url=tunnel)
    data = raw(urls=[u.encode() for u in urls], tunnel=tunnel.encode())
    assert len(data) == 997
    with pytest.raises(MalformedMessage, match="997 bytes"):
        decode(data)


def test_every_changed_byte_is_refused() -> None:
    assert_every_flip_refused(advert(tunnel_url="http://t:1").encode(), decode)


TOO_LONG = b"http://h/" + b"p" * (MAX_ADVERT_URL - 8)
MALFORMED: dict[str, tuple[bytes, str]] = {
    "magic": (raw(magic=b"ATQ\x01"), "bad magic"),
    "version": (raw(magic=b"ATN\x02"), "bad magic or version"),
    "truncated": (raw()[:-1], "truncated"),
    "trailing": (raw() + b"\0", "trailing"),
    "expiry before issue": (raw(expires_at=NOW), "expiry must follow"),
    "lifetime over a day": (raw(expires_at=NOW + MAX_ADVERT_LIFETIME + 1), "expiry must follow"),
    "payee prefix": (raw(payee=b"\x42" + PAYEE.raw[1:]), "TRON address"),
    "asset": (raw(asset=9), "asset"),
    "clearing below reserve": (raw(clearing=999), "below the reserve"),
    "slots without market": (raw(capacity=0), "without a market"),
    "no free slot": (raw(free_slots=0), "free_slots"),
    "free over slots": (raw(free_slots=9), "free_slots"),
    "no round length": (raw(round=0), "round_seconds"),
    "no URL": (raw(urls=[]), "0 HTTP URLs"),
    "four URLs": (raw(urls=[b"http://a", b"http://b", b"http://c", b"http://d"]), "4 HTTP"),
    "count past the URLs": (raw(count=2), r"tunnel url is \d+ bytes, limit"),
    "URL scheme": (raw(urls=[b"ftp://host/"]), "HTTP URL must be absolute"),
    "URL not ASCII": (raw(urls=["http://h\u00e9/".encode()]), "HTTP URL must be absolute"),
    "URL not UTF-8": (raw(urls=[b"http://h/\xff"]), "not valid UTF-8"),
    "URL too long": (raw(urls=[TOO_LONG]), f"limit {MAX_ADVERT_URL}"),
    "URL twice": (raw(urls=[b"http://a", b"http://a"]), "listed twice"),
    "tunnel URL": (raw(tunnel=b"tcp://h:1"), "tunnel URL must be absolute"),
    "tunnel too long": (raw(tunnel=TOO_LONG), f"limit {MAX_ADVERT_URL}"),
    "empty": (b"", "bad magic"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_field_is_refused(case: str) -> None:
    data, message = MALFORMED[case]
    with pytest.raises(MalformedMessage, match=message):
        decode(data)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expires_at": NOW}, "expiry must follow"),
        ({"market": Market(5, 4, 0, 0, 0, 0, 0)}, "below the reserve"),
        ({"market": Market(1, 1, 0, 100, 1, 2, 1)}, "free_slots"),
        ({"market": Market(-1, 1, 0, 0, 0, 0, 0)}, "does not fit"),
        ({"market": Market(1, U128_MAX + 1, 0, 0, 0, 0, 0)}, "does not fit"),
        ({"http_urls": ()}, "0 HTTP URLs"),
        ({"http_urls": ("https://h/", "javascript:x")}, "HTTP URL must be absolute"),
        ({"tunnel_url": ""}, "tunnel URL must be absolute"),
    ],
)
def test_create_refuses_what_decode_would(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        advert(**overrides)


def test_expiry_and_clock_skew() -> None:
    data = advert(issued_at=NOW, expires_at=NOW + 60).encode()
    assert NodeAdvert.decode(data, NOW + 59).expires_at == NOW + 60
    with pytest.raises(AdvertExpired, match="expired"):
        NodeAdvert.decode(data, NOW + 60)
    assert NodeAdvert.decode(data, NOW - MAX_CLOCK_SKEW).issued_at == NOW
    with pytest.raises(AdvertExpired, match="in the future"):
        NodeAdvert.decode(data, NOW - MAX_CLOCK_SKEW - 1)


def test_another_keys_signature_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="node advert"):
        decode(raw(key=OTHER))
    with pytest.raises(InvalidSignature):
        decode(raw(tag=b""))  # signed without the domain tag
    with pytest.raises(InvalidSignature):
        decode(raw(tag=b"atlas.node-advert.v2"))


def test_an_advert_under_another_nodes_key_is_refused() -> None:
    data = advert().encode()
    assert NodeAdvert.decode(data, NOW, node_id=EDGE.node_id).node_id == EDGE.node_id
    with pytest.raises(WrongBinding, match="stored under node"):
        NodeAdvert.decode(data, NOW, node_id=OTHER.node_id)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessage, match="100000 bytes"):
        decode(b"ATN\x01" + bytes(100_000 - 4))


_url = st.builds(
    lambda scheme, rest: f"{scheme}://{rest}",
    st.sampled_from(["http", "https"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=120),
)


@st.composite
def markets(draw: st.DrawFn) -> Market:
    reserve = draw(st.integers(0, U128_MAX))
    prices = (reserve, draw(st.integers(reserve, U128_MAX)), draw(st.integers(0, U128_MAX)))
    if draw(st.booleans()):
        return Market(*prices, 0, 0, 0, 0)
    slots = draw(st.integers(1, 65535))
    free = draw(st.integers(1, slots))
    return Market(*prices, draw(st.integers(1, U64_MAX)), slots, free, draw(st.integers(1, 65535)))


@settings(max_examples=200, deadline=None)
@given(
    issued=st.integers(0, U64_MAX - 1),
    life=st.integers(1, MAX_ADVERT_LIFETIME),
    payee=st.binary(min_size=20, max_size=20),
    asset=st.sampled_from([BTT, BTT_LEGACY, BTT_LOCAL]),
    chain=st.integers(0, U64_MAX),
    contract=st.binary(min_size=20, max_size=20),
    market=markets(),
    urls=st.lists(_url, min_size=1, max_size=3, unique=True),
    tunnel=st.one_of(st.none(), _url),
)
def test_any_valid_advert_round_trips(
    issued: int, life: int, payee: bytes, asset: Any, chain: int, contract: bytes,
    market: Market, urls: list[str], tunnel: str | None,
) -> None:  # fmt: skip
    expires = min(issued + life, U64_MAX)
    made = advert(
        issued_at=issued, expires_at=expires, payee=TronAddress(b"\x41" + payee), asset=asset,
        domain=PaymentDomain(chain, contract), market=market, http_urls=tuple(urls),
        tunnel_url=tunnel,
    )  # fmt: skip
    data = made.encode()
    assert len(data) == FIXED + sum(map(len, urls)) + len(tunnel or "") + 2 * (len(urls) - 1)
    assert NodeAdvert.decode(data, issued) == made
