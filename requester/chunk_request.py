"""One GET for one chunk: bounded in time and size, its connection failures told apart.

Split from :mod:`requester.chunk_client`, which decides what to send and what the answer
means. A refused or reset connection (a provider restarting) is
:class:`ProviderUnreachable`, which the downloader asks again later; a timeout or any
other client error is a :class:`ProviderFault`, which drops the provider.
"""

from __future__ import annotations

import aiohttp

from requester.chunk_faults import ProviderFault, ProviderUnreachable
from requester.provider_answer import read_capped

__all__ = ["CHUNK_TIMEOUT", "FREE_LANE", "MAX_BODY", "request_chunk"]

MAX_BODY = 17 * 1024 * 1024
"""Largest answer read: a chunk is at most 16 MiB (the protocol's limit), plus slack."""
CHUNK_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5, sock_read=45)
"""The silence allowed is longer than an edge's 30 s wait for a chunk still arriving from its
origin, so the edge's own answer (the content failed, or ``503 chunk_not_ready``) comes
before the requester gives up on it: at 30 s the two raced, and a lost race dropped the
edge as unreachable instead of reporting the content's failure."""

FREE_LANE = {"Accept-Encoding": "zstd"}
"""A request with no payment and no bid: a market edge's free lane."""


async def request_chunk(session: aiohttp.ClientSession, provider: str, url: str,
                        headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    """The status, body (still encoded) and headers of the provider's answer."""
    try:
        async with session.get(
            url, headers=headers, timeout=CHUNK_TIMEOUT, auto_decompress=False
        ) as resp:
            body = await read_capped(resp, MAX_BODY)
            return resp.status, body, dict(resp.headers)
    except TimeoutError as exc:
        raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:  # refused, reset
        raise ProviderUnreachable(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
    except aiohttp.ClientError as exc:
        raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
