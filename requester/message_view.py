"""Human-readable views of protocol messages, for ``atlas decode`` and debugging."""

from __future__ import annotations

from requester.protocol import (
    UNKNOWN_SIZE,
    MalformedMessage,
    ManifestHead,
    Quote,
    TorrentSource,
    UrlSource,
    Voucher,
    format_amount,
)
from requester.protocol.manifest import HEAD_MAGIC
from requester.protocol.quote import QUOTE_MAGIC
from requester.protocol.voucher import VOUCHER_MAGIC


def describe_message(raw: bytes) -> dict[str, object]:
    """Decode (and so verify) one message and return its fields as JSON-ready data."""
    magic = raw[:4]
    if magic == HEAD_MAGIC:
        return _head(ManifestHead.decode(raw))
    if magic == QUOTE_MAGIC:
        return _quote(Quote.decode(raw))
    if magic == VOUCHER_MAGIC:
        return _voucher(Voucher.decode(raw))
    raise MalformedMessage(
        "not a manifest head, quote or voucher (chunk statements and seals need their head)"
    )


def _head(head: ManifestHead) -> dict[str, object]:
    source: dict[str, object]
    if isinstance(head.source, UrlSource):
        source = {"url": head.source.url}
    else:
        assert isinstance(head.source, TorrentSource)
        source = {"infohash": head.source.infohash.hex(), "path": head.source.path}
    return {
        "type": "manifest-head",
        "signature": "valid",
        "content_id": head.content_id.hex(),
        "edge_id": head.edge_id.hex(),
        "created_at": head.created_at,
        "source": source,
        "status": head.status,
        "headers": [list(h) for h in head.headers],
        "chunk_size": head.chunk_size,
        "size_hint": None if head.size_hint == UNKNOWN_SIZE else head.size_hint,
    }


def _quote(quote: Quote) -> dict[str, object]:
    return {
        "type": "quote",
        "signature": "valid",
        "edge_id": quote.edge_id.hex(),
        "payee": str(quote.payee),
        "asset": quote.asset.uri,
        "chain_id": quote.domain.chain_id,
        "ledger_contract": quote.domain.contract.hex(),
        "content_id": quote.content_id.hex(),
        "price_per_chunk": format_amount(quote.price_per_chunk, quote.asset),
        "price_per_mib": format_amount(quote.price_per_mib, quote.asset),
        "interval": quote.interval,
        "valid_from": quote.valid_from,
        "valid_until": quote.valid_until,
    }


def _voucher(voucher: Voucher) -> dict[str, object]:
    return {
        "type": "voucher",
        "signature": "valid",
        "digest": voucher.digest().hex(),
        "chain_id": voucher.domain.chain_id,
        "ledger_contract": voucher.domain.contract.hex(),
        "channel_id": voucher.channel_id.hex(),
        "payer": str(voucher.payer),
        "payee": str(voucher.payee),
        "asset": voucher.asset.uri,
        "amount": format_amount(voucher.amount, voucher.asset),
        "amount_base_units": str(voucher.amount),
    }
