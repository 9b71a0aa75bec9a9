"""An edge's signed advert: who it is, how it is paid, what it charges, where it listens.

Edges publish it in the BitTorrent DHT as a BEP 44 mutable item under their
node key (salt ``atlas.node.v1``, see :mod:`requester.protocol.dht`), so a
requester that found an edge id anywhere (a DHT announce, a manifest head) can
read its terms without asking the edge. The value must fit BEP 44's 1000
bencoded bytes, so the advert is at most :data:`MAX_ADVERT_BYTES` (996) and
every variable field is bounded. It carries its own Ed25519 signature under a
domain tag, so it can be checked away from the DHT (over HTTP, from a cache),
and it expires: DHT nodes keep items for hours after an edge has gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from requester.protocol.assets import Asset, asset_by_code
from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.dht import MAX_BEP44_STRING
from requester.protocol.errors import AdvertExpired, MalformedMessage, WrongBinding
from requester.protocol.identity import (
    ED25519_SIG_SIZE,
    NODE_ID_SIZE,
    TRON_ADDRESS_SIZE,
    NodeId,
    NodeKey,
    TronAddress,
)
from requester.protocol.payment_domain import PaymentDomain

ADVERT_MAGIC = MAGIC_PREFIX + b"N\x01"
ADVERT_SIGNING_TAG = b"atlas.node-advert.v1"
"""Prefixed to the body before signing: no other message the node key signs
(Atlas messages start with ``AT``, BEP 44 buffers with ``3:seq`` or ``4:salt``) can
be taken for an advert."""
MAX_ADVERT_BYTES = MAX_BEP44_STRING
MAX_ADVERT_LIFETIME = 24 * 3600
"""An advert is republished every 30 minutes; one valid for longer than a day is refused."""
MAX_CLOCK_SKEW = 300
"""An advert issued more than this many seconds in the future is refused."""
MAX_ADVERT_URL = 255
MAX_HTTP_URLS = 3
_URL = re.compile(r"https?://[\x21-\x7e]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Market:
    """The numbers an edge's market publishes (docs/market.md); capacity 0 = no market."""

    reserve: int
    """Base units per MiB below which no paid slot sells (the fixed price without a market)."""
    clearing_price: int
    """Base units per MiB a paid slot costs this round (without a market: the fixed price)."""
    price_per_chunk: int
    capacity: int
    """Upload capacity in bytes/s; 0 = unlimited, no auction."""
    slots: int
    free_slots: int
    round_seconds: int

    def check(self, what: str = "advert") -> None:
        """Refuse terms no edge publishes (``what`` names the message in the error)."""
        if self.clearing_price < self.reserve:
            raise MalformedMessage(f"{what}: clearing price below the reserve")
        if self.capacity == 0:
            if self.slots or self.free_slots or self.round_seconds:
                raise MalformedMessage(f"{what}: slots and rounds without a market (capacity 0)")
        elif not (1 <= self.free_slots <= self.slots and self.round_seconds >= 1):
            raise MalformedMessage(
                f"{what}: a market needs 1 <= free_slots <= slots and round_seconds >= 1"
            )


@dataclass(frozen=True, slots=True)
class NodeAdvert:
    node_id: NodeId
    issued_at: int
    expires_at: int
    payee: TronAddress
    asset: Asset
    domain: PaymentDomain
    market: Market
    http_urls: tuple[str, ...]
    """Base URLs of the edge's HTTP API, preferred first (1..3)."""
    tunnel_url: str | None
    """The edge's CONNECT listener (docs/protocol.md section 11), or None."""
    signature: bytes

    @classmethod
    def create(
        cls,
        key: NodeKey,
        *,
        issued_at: int,
        expires_at: int,
        payee: TronAddress,
        asset: Asset,
        domain: PaymentDomain,
        market: Market,
        http_urls: tuple[str, ...],
        tunnel_url: str | None = None,
    ) -> NodeAdvert:
        """Sign an advert; refuses one that would not fit a BEP 44 value."""
        fields = (issued_at, expires_at, payee, asset, domain, market, tuple(http_urls), tunnel_url)
        body = _body(key.node_id, *fields)
        if len(body) + ED25519_SIG_SIZE > MAX_ADVERT_BYTES:
            raise MalformedMessage(_too_big(len(body) + ED25519_SIG_SIZE))
        return cls(key.node_id, *fields, key.sign(ADVERT_SIGNING_TAG + body))

    @classmethod
    def decode(cls, data: bytes, now: int, node_id: NodeId | None = None) -> NodeAdvert:
        """Parse and verify an advert valid at ``now``; with ``node_id``, it must be that node's
        (a BEP 44 item's key): anything else is refused."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedMessage("node advert: expected bytes")
        if len(data) > MAX_ADVERT_BYTES:
            raise MalformedMessage(_too_big(len(data)))
        r = Reader(data, ADVERT_MAGIC, "node advert")
        advert_id = NodeId(r.fixed(NODE_ID_SIZE))
        issued_at, expires_at = r.u64(), r.u64()
        payee = TronAddress(r.fixed(TRON_ADDRESS_SIZE))
        asset = asset_by_code(r.u8())
        domain = PaymentDomain.of(r.u64(), r.fixed(20))
        market = Market(r.u128(), r.u128(), r.u128(), r.u64(), r.u16(), r.u16(), r.u16())
        count = r.u8()
        if not 1 <= count <= MAX_HTTP_URLS:
            raise MalformedMessage(f"node advert: {count} HTTP URLs, must be 1..{MAX_HTTP_URLS}")
        urls = tuple(r.text16(MAX_ADVERT_URL, "http url") for _ in range(count))
        tunnel = r.text16(MAX_ADVERT_URL, "tunnel url") or None
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        _check(issued_at, expires_at, market, urls, tunnel)
        if node_id is not None and node_id != advert_id:
            raise WrongBinding(f"node advert of {advert_id} stored under node {node_id}")
        signed = ADVERT_SIGNING_TAG + bytes(data[:-ED25519_SIG_SIZE])
        advert_id.verify(signed, signature, "node advert")
        fields = (issued_at, expires_at, payee, asset, domain, market, urls, tunnel)
        advert = cls(advert_id, *fields, signature)
        advert.check_valid(now)
        return advert

    def encode(self) -> bytes:
        return (
            _body(
                self.node_id,
                self.issued_at,
                self.expires_at,
                self.payee,
                self.asset,
                self.domain,
                self.market,
                self.http_urls,
                self.tunnel_url,
            )
            + self.signature
        )

    def check_valid(self, now: int) -> None:
        if now >= self.expires_at:
            raise AdvertExpired(f"node advert expired at {self.expires_at}, now is {now}")
        if self.issued_at > now + MAX_CLOCK_SKEW:
            raise AdvertExpired(f"node advert issued at {self.issued_at}, in the future of {now}")


def _too_big(size: int) -> str:
    return (
        f"node advert is {size} bytes; a BEP 44 value holds at most {MAX_ADVERT_BYTES} "
        f"(1000 bytes bencoded as '{MAX_ADVERT_BYTES}:' + bytes)"
    )


def _check_url(url: str, what: str) -> None:
    if not isinstance(url, str) or not _URL.fullmatch(url) or len(url) > MAX_ADVERT_URL:
        raise MalformedMessage(
            f"node advert: {what} must be absolute http(s), printable ASCII, "
            f"at most {MAX_ADVERT_URL} bytes: {str(url)[:80]!r}"
        )


def _check(
    issued_at: int, expires_at: int, market: Market, urls: tuple[str, ...], tunnel: str | None
) -> None:
    if not issued_at < expires_at <= issued_at + MAX_ADVERT_LIFETIME:
        raise MalformedMessage(
            f"node advert: expiry must follow issue by 1..{MAX_ADVERT_LIFETIME} s "
            f"(issued {issued_at}, expires {expires_at})"
        )
    market.check()
    if not 1 <= len(urls) <= MAX_HTTP_URLS:
        raise MalformedMessage(f"node advert: {len(urls)} HTTP URLs, must be 1..{MAX_HTTP_URLS}")
    if len(set(urls)) != len(urls):
        raise MalformedMessage("node advert: an HTTP URL is listed twice")
    for url in urls:
        _check_url(url, "HTTP URL")
    if tunnel is not None:
        _check_url(tunnel, "tunnel URL")


def _body(
    node_id: NodeId,
    issued_at: int,
    expires_at: int,
    payee: TronAddress,
    asset: Asset,
    domain: PaymentDomain,
    market: Market,
    urls: tuple[str, ...],
    tunnel: str | None,
) -> bytes:
    _check(issued_at, expires_at, market, urls, tunnel)
    w = Writer(ADVERT_MAGIC).fixed(node_id.raw, NODE_ID_SIZE).u64(issued_at).u64(expires_at)
    w.fixed(payee.raw, TRON_ADDRESS_SIZE).u8(asset.code)
    w.u64(domain.chain_id).fixed(domain.contract, 20)
    w.u128(market.reserve).u128(market.clearing_price).u128(market.price_per_chunk)
    w.u64(market.capacity).u16(market.slots).u16(market.free_slots).u16(market.round_seconds)
    w.u8(len(urls))
    for url in urls:
        w.text16(url)
    return w.text16(tunnel or "").getvalue()
