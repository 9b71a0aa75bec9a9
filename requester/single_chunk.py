"""The body of a sealed one-chunk content, fetched without the scheduler's workers.

A page asset is one chunk, and needs none of what :class:`requester.downloader.ChunkScheduler`
is for (a window, order, runs, racing stragglers): yet the scheduler starts two worker tasks
per provider, each waiting on a timer while one of them fetches, about a tenth of the proxy's
CPU for a cached 16 KiB object. :func:`single_chunk` asks the origin edge for that chunk
through the download's own :class:`ChunkClient` (paid, verified, with its trust and market),
records it in the download's progress as the scheduler would, and checks the seal. When that
one request fails in a way the scheduler would try elsewhere, the scheduler takes over and
asks the other providers; what stops a download (a spend limit, the origin edge saying the
content failed) stops it here too.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import TYPE_CHECKING

from requester.chunk_client import (
    ChunkClient,
    ChunkUnavailable,
    ContentFailed,
    Delivered,
    ProviderFault,
    ProviderUnreachable,
)
from requester.download_failures import ContentFailedAtOrigin
from requester.protocol import ContentVerifier

if TYPE_CHECKING:
    from requester.client import Download


def is_single(verifier: ContentVerifier, start_index: int) -> bool:
    """Sealed, one chunk long, delivered from its start."""
    seal = verifier.seal
    return seal is not None and seal.chunk_count == 1 and start_index == 0


async def single_chunk(download: Download, chunks: ChunkClient) -> bytes:
    """The whole body of ``download`` (:func:`is_single`), verified and paid; its provider's
    counts, payments and faults go in the scheduler's :class:`ProviderBook`, as its workers'."""
    scheduler = download.scheduler
    verifier = scheduler.verifier
    if not is_single(verifier, scheduler.start_index):
        raise ValueError("single_chunk is for a sealed content of one chunk")
    provider, book = download.origin_edge, scheduler.book
    stats = book.progress.providers[provider]
    stats.first_asked = stats.first_asked or time.monotonic()
    stats.requests += 1
    try:
        delivered: Delivered | None = await chunks.get(
            provider, verifier, 0, scheduler.trust, scheduler.market
        )
    except (ProviderUnreachable, ChunkUnavailable):  # the scheduler backs off, or asks others
        delivered = None
    except ProviderFault as exc:
        if book.fault(provider, exc) and isinstance(exc, ContentFailed):  # nobody has more
            raise ContentFailedAtOrigin(exc) from exc
        delivered = None
    finally:
        book.sync_paid()
    if delivered is None:  # the scheduler's way, over every provider (not a dropped one)
        async with aclosing(download.chunks()) as rest:
            return b"".join([data async for data in rest])
    book.took(provider, delivered)
    scheduler.progress.delivered_bytes += len(delivered.data)
    if scheduler.market is not None:
        scheduler.market.delivered(len(delivered.data), time.monotonic())
    verifier.check_complete()
    return delivered.data
