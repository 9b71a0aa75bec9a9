"""Checking a provider's answer for one chunk before a byte of it is used or paid.

Split from :mod:`requester.chunk_client`, which decides when to ask and pay; this module
holds the checks themselves: a 200's chunk must inflate to no more than the chunk's stated
size and match the origin edge's signed statement, and a 402's quote must be signed, for
this content, within the caller's price limit, and ask no more than it allows for the
bytes sent. Any failure raises :class:`ProviderFault` with evidence.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import zstandard

from requester.bidding import LANE_HEADER
from requester.chunk_faults import ProviderFault
from requester.protocol import (
    ContentVerifier,
    ProtocolError,
    Quote,
    b64url_decode,
    b64url_encode,
    format_amount,
)
from requester.protocol.manifest import STATEMENT_SIZE
from requester.protocol.quote import QUOTE_SIZE, chunk_price
from requester.provider_answer import inflate

__all__ = ["Delivered", "accept_chunk", "bad_chunk", "check_quote"]


@dataclass(frozen=True)
class Delivered:
    data: bytes
    sha256: bytes
    statement: bytes
    """The origin edge's signed statement for the chunk (for providers that re-serve it)."""
    price: int
    """What the provider charged for it (``Atlas-Price``; 0 when ``Atlas-Paid-By: free``)."""
    wire_bytes: int
    paid_by: str
    spent: int = 0
    """What this request signed over in vouchers (credit left with the provider included)."""
    lane: str = ""
    """``paid`` or ``free``: the edge's ``Atlas-Lane``, else read from ``Atlas-Paid-By``."""
    seconds: float = 0.0
    """How long the request that delivered it took."""


def accept_chunk(provider: str, verifier: ContentVerifier, index: int, body: bytes,
                 answer: dict[str, str], spent: int) -> Delivered:  # fmt: skip
    """Chunk ``index`` from a provider's 200, verified against its signed statement."""
    wire = len(body)
    try:
        statement = b64url_decode(answer.get("Atlas-Chunk", ""), STATEMENT_SIZE, "Atlas-Chunk")
        if answer.get("Content-Encoding") == "zstd":
            body = inflate(body, verifier.head.chunk_size)
        elif answer.get("Content-Encoding") not in (None, "identity"):
            raise ProviderFault(provider, "unknown Content-Encoding")
        checked = verifier.verify_chunk(statement, body)
    except (ProtocolError, zstandard.ZstdError) as exc:
        raise bad_chunk(provider, verifier, index, body, answer.get("Atlas-Chunk", ""),
                        exc) from exc  # fmt: skip
    if checked.index != index:
        raise ProviderFault(provider, f"sent chunk {checked.index} for {index}")
    price = answer.get("Atlas-Price", "0")
    paid_by = answer.get("Atlas-Paid-By", "")
    lane = answer.get(LANE_HEADER, "")
    if lane not in ("paid", "free"):
        lane = "free" if paid_by in ("free", "") else "paid"
    # Paid by nobody: charged nothing (an edge's free allowance states the chunk's price).
    charged = int(price) if price.isascii() and price.isdigit() and paid_by != "free" else 0
    return Delivered(
        body,
        checked.sha256,
        statement,
        charged,
        wire,
        paid_by,
        spent,
        lane,
    )


def bad_chunk(provider: str, verifier: ContentVerifier, index: int, body: bytes, statement: str,
              exc: ProtocolError | zstandard.ZstdError) -> ProviderFault:  # fmt: skip
    """The fault for a chunk that failed its checks, with the evidence that proves it: what
    was received, the head and the statement it was checked against."""
    detail = exc.message if isinstance(exc, ProtocolError) else str(exc)
    return ProviderFault(
        provider, f"bad chunk {index}: {detail}",
        {"content_id": verifier.head.content_id.hex(), "index": str(index),
         "sha256_received": hashlib.sha256(body).hexdigest(), "provider": provider,
         "head": b64url_encode(verifier.head.encode()), "statement": statement},
    )  # fmt: skip


def check_quote(provider: str, verifier: ContentVerifier, answer: dict[str, str],
                max_price_per_mib: int | None, max_price_per_chunk: int = 0,
                auction: bool = False) -> tuple[Quote, int]:  # fmt: skip
    """A 402's quote and the price it asks, checked. With ``max_price_per_mib`` (the
    caller's ``--max-price``), the most a full chunk may cost is that price with
    ``max_price_per_chunk`` as its fixed part; a market's quote is not held to it (above
    the ceiling the download takes its free lane instead)."""
    try:
        quote = Quote.decode(b64url_decode(answer.get("Atlas-Quote", ""), QUOTE_SIZE, "quote"))
        quote.check_valid(int(time.time()))
    except ProtocolError as exc:
        raise ProviderFault(provider, f"bad quote: {exc.message}") from exc
    if quote.content_id not in (verifier.head.content_id, bytes(32)):
        raise ProviderFault(provider, "quote is for other content")
    if max_price_per_mib is not None and not auction:  # a market's: its free lane
        _check_limit(provider, quote, verifier.head.chunk_size, max_price_per_mib,
                     max_price_per_chunk)  # fmt: skip
    price_text = answer.get("Atlas-Price", "")
    if not price_text.isascii() or not price_text.isdigit():
        raise ProviderFault(provider, "402 without a price")
    price = int(price_text)
    # The wire form is at most the raw chunk (edges only compress when it is smaller).
    if price > quote.chunk_price(verifier.head.chunk_size):
        raise ProviderFault(provider, f"asked {price}, more than its quote allows")
    return quote, price


def _check_limit(provider: str, quote: Quote, size: int, per_mib: int, per_chunk: int) -> None:
    """Refuse a quote whose price for a full chunk of this content (its fixed part per
    chunk included, or a tiny per-MiB price would hide a huge one per chunk) is above
    the limit's price for the same bytes."""
    asked = quote.chunk_price(size)
    limit = chunk_price(per_chunk, per_mib, size)
    if asked > limit:
        a = quote.asset
        raise ProviderFault(
            provider,
            f"price {format_amount(asked, a)} for a full {size}-byte chunk "
            f"({format_amount(quote.price_per_chunk, a)} per chunk + "
            f"{format_amount(quote.price_per_mib, a)}/MiB) is above the limit of "
            f"{format_amount(limit, a)} ({format_amount(per_mib, a)}/MiB)",
        )
