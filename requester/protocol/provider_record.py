"""A provider's signed word that it serves some content, and on what terms, for trackers.

Trackers hand out these records; requesters check the signature, so a
tracker cannot invent providers, only withhold them. Records expire.
Version 2 (``ATP\\x02``) also carries the edge's market terms as it signed them
(reserve, last clearing price, capacity, slots, round length: the layout of a
node advert's, docs/protocol.md 12.1), so a requester knows a provider's price
before asking it; version 1 records (no terms) still decode, with ``market`` None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.errors import MalformedMessage
from requester.protocol.identity import ED25519_SIG_SIZE, NODE_ID_SIZE, NodeId, NodeKey
from requester.protocol.node_advert import Market

RECORD_MAGIC_V1 = MAGIC_PREFIX + b"P\x01"
RECORD_MAGIC = MAGIC_PREFIX + b"P\x02"
MAX_PROVIDER_URL = 2048
MARKET_TERMS_BYTES = 3 * 16 + 8 + 3 * 2
"""reserve, clearing_price, price_per_chunk (u128); capacity (u64); slots, free_slots,
round_seconds (u16)."""
MAX_RECORD_BYTES = (
    4 + 32 + NODE_ID_SIZE + 2 + MAX_PROVIDER_URL + 8 + MARKET_TERMS_BYTES + ED25519_SIG_SIZE
)
_URL = re.compile(r"https?://[\x21-\x7e]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    content_id: bytes
    node_id: NodeId
    url: str
    """Base URL of the provider's edge API."""
    expires_at: int
    signature: bytes
    market: Market | None = None
    """The terms the provider signed (version 2); None for a version 1 record."""

    @classmethod
    def create(
        cls, key: NodeKey, content_id: bytes, url: str, expires_at: int,
        market: Market | None = None,
    ) -> ProviderRecord:  # fmt: skip
        """Sign a record: version 2 with ``market``, version 1 (no terms) without."""
        body = _body(content_id, key.node_id, url, expires_at, market)
        return cls(content_id, key.node_id, url, expires_at, key.sign(body), market)

    @classmethod
    def decode(cls, data: bytes) -> ProviderRecord:
        """Parse and verify a record (either version) signed by the provider it names."""
        if isinstance(data, bytes | bytearray | memoryview) and len(data) > MAX_RECORD_BYTES:
            raise MalformedMessage("provider record too long")
        v2 = bytes(data[:4]) == RECORD_MAGIC
        r = Reader(data, RECORD_MAGIC if v2 else RECORD_MAGIC_V1, "provider record")
        content_id = r.fixed(32)
        node_id = NodeId(r.fixed(NODE_ID_SIZE))
        url = r.text16(MAX_PROVIDER_URL, "provider url")
        expires_at = r.u64()
        market = None
        if v2:
            market = Market(r.u128(), r.u128(), r.u128(), r.u64(), r.u16(), r.u16(), r.u16())
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        _check(url, market)
        node_id.verify(bytes(data[:-ED25519_SIG_SIZE]), signature, "provider record")
        return cls(content_id, node_id, url, expires_at, signature, market)

    def encode(self) -> bytes:
        body = _body(self.content_id, self.node_id, self.url, self.expires_at, self.market)
        return body + self.signature


def _check(url: str, market: Market | None) -> None:
    if not _URL.fullmatch(url) or len(url) > MAX_PROVIDER_URL:
        raise MalformedMessage(f"provider URL must be absolute http(s): {url[:80]!r}")
    if market is not None:
        market.check("provider record")


def _body(
    content_id: bytes, node_id: NodeId, url: str, expires_at: int, market: Market | None
) -> bytes:
    _check(url, market)
    magic = RECORD_MAGIC_V1 if market is None else RECORD_MAGIC
    w = Writer(magic).fixed(content_id, 32).fixed(node_id.raw, NODE_ID_SIZE)
    w.text16(url).u64(expires_at)
    if market is not None:
        w.u128(market.reserve).u128(market.clearing_price).u128(market.price_per_chunk)
        w.u64(market.capacity).u16(market.slots).u16(market.free_slots)
        w.u16(market.round_seconds)
    return w.getvalue()
