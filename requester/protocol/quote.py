"""A price offer, signed by the edge that will be paid.

A quote names what it prices (a content id, or ``ANY_CONTENT`` for byte-metered
services such as tunnels), the asset and ledger, the payee, and the price: a
fixed part per chunk plus a part per MiB actually sent on the wire, so
compressed text costs less than the same bytes uncompressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from requester.protocol.assets import Asset, asset_by_code
from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.errors import MalformedMessage, QuoteExpired
from requester.protocol.identity import (
    ED25519_SIG_SIZE,
    NODE_ID_SIZE,
    TRON_ADDRESS_SIZE,
    NodeId,
    NodeKey,
    TronAddress,
)
from requester.protocol.payment_domain import PaymentDomain

QUOTE_MAGIC = MAGIC_PREFIX + b"Q\x01"
QUOTE_SIZE = 4 + 32 + 21 + 1 + 8 + 20 + 32 + 16 + 16 + 4 + 8 + 8 + ED25519_SIG_SIZE
ANY_CONTENT = bytes(32)
MIB = 1 << 20
MAX_INTERVAL = 4096


@dataclass(frozen=True, slots=True)
class Quote:
    edge_id: NodeId
    payee: TronAddress
    asset: Asset
    domain: PaymentDomain
    content_id: bytes
    price_per_chunk: int
    price_per_mib: int
    interval: int
    """Chunks one voucher may pay for in advance; the payer may pay less often than per chunk."""
    valid_from: int
    valid_until: int
    signature: bytes

    @classmethod
    def create(
        cls,
        key: NodeKey,
        *,
        payee: TronAddress,
        asset: Asset,
        domain: PaymentDomain,
        content_id: bytes,
        price_per_chunk: int,
        price_per_mib: int,
        interval: int,
        valid_from: int,
        valid_until: int,
    ) -> Quote:
        fields = (
            payee,
            asset,
            domain,
            content_id,
            price_per_chunk,
            price_per_mib,
            interval,
            valid_from,
            valid_until,
        )
        body = _body(key.node_id, *fields)
        return cls(key.node_id, *fields, key.sign(body))

    @classmethod
    def decode(cls, data: bytes) -> Quote:
        """Parse and verify a quote; refuses anything malformed or not signed by its edge."""
        if len(data) != QUOTE_SIZE:
            raise MalformedMessage(f"quote must be {QUOTE_SIZE} bytes, got {len(data)}")
        r = Reader(data, QUOTE_MAGIC, "quote")
        edge_id = NodeId(r.fixed(NODE_ID_SIZE))
        payee = TronAddress(r.fixed(TRON_ADDRESS_SIZE))
        asset = asset_by_code(r.u8())
        domain = PaymentDomain.of(r.u64(), r.fixed(20))
        content_id = r.fixed(32)
        per_chunk, per_mib, interval = r.u128(), r.u128(), r.u32()
        valid_from, valid_until = r.u64(), r.u64()
        signature = r.fixed(ED25519_SIG_SIZE)
        r.end()
        _check(interval, valid_from, valid_until)
        edge_id.verify(data[:-ED25519_SIG_SIZE], signature, "quote")
        return cls(
            edge_id,
            payee,
            asset,
            domain,
            content_id,
            per_chunk,
            per_mib,
            interval,
            valid_from,
            valid_until,
            signature,
        )

    def encode(self) -> bytes:
        body = _body(
            self.edge_id,
            self.payee,
            self.asset,
            self.domain,
            self.content_id,
            self.price_per_chunk,
            self.price_per_mib,
            self.interval,
            self.valid_from,
            self.valid_until,
        )
        return body + self.signature

    def chunk_price(self, wire_bytes: int) -> int:
        """Price of a chunk of ``wire_bytes`` bytes as sent: fixed + per-MiB part, rounded up."""
        return chunk_price(self.price_per_chunk, self.price_per_mib, wire_bytes)

    def check_valid(self, now: int) -> None:
        if not self.valid_from <= now < self.valid_until:
            raise QuoteExpired(
                f"quote valid from {self.valid_from} until {self.valid_until}, now is {now}"
            )


def chunk_price(price_per_chunk: int, price_per_mib: int, wire_bytes: int) -> int:
    """What :meth:`Quote.chunk_price` charges, for a payee that has not signed the quote
    (an edge signs one only when it must show it, on a 402)."""
    if wire_bytes < 0:
        raise MalformedMessage("negative size")
    return price_per_chunk + -(-wire_bytes * price_per_mib // MIB)


def _check(interval: int, valid_from: int, valid_until: int) -> None:
    if not 1 <= interval <= MAX_INTERVAL:
        raise MalformedMessage(f"payment interval {interval} not in [1, {MAX_INTERVAL}]")
    if valid_until <= valid_from:
        raise MalformedMessage("quote validity window is empty")


def _body(
    edge_id: NodeId,
    payee: TronAddress,
    asset: Asset,
    domain: PaymentDomain,
    content_id: bytes,
    price_per_chunk: int,
    price_per_mib: int,
    interval: int,
    valid_from: int,
    valid_until: int,
) -> bytes:
    _check(interval, valid_from, valid_until)
    w = Writer(QUOTE_MAGIC).fixed(edge_id.raw, NODE_ID_SIZE).fixed(payee.raw, TRON_ADDRESS_SIZE)
    w.u8(asset.code).u64(domain.chain_id).fixed(domain.contract, 20).fixed(content_id, 32)
    w.u128(price_per_chunk).u128(price_per_mib).u32(interval)
    return w.u64(valid_from).u64(valid_until).getvalue()
