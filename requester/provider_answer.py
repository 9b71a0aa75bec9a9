"""Reading a provider's answer without trusting it: a bounded body, a zstd chunk inflated
no further than its stated size, and an error body turned into words a terminal can show.

Split from :mod:`requester.chunk_client`, which decides what an answer means; this module
only makes sure that reading it costs bounded memory and prints nothing hostile.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import zstandard

MAX_WINDOW = 1 << 25
"""Largest zstd window a chunk's frame may ask for (a chunk is at most 16 MiB)."""


def inflate(body: bytes, limit: int) -> bytes:
    """The zstd frame in ``body``, refused past ``limit`` bytes of output.

    Read through a stream, not ``decompress``: python-zstandard's one-shot decompress ignores
    ``max_output_size`` when the frame states its content size, so a 6 KiB body would inflate
    to 200 MiB, and a frame claiming 2^40 bytes would raise MemoryError.
    """
    reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(body)
    parts: list[bytes] = []
    size = 0
    while part := reader.read(limit + 1 - size):
        parts.append(part)
        size += len(part)
        if size > limit:
            raise zstandard.ZstdError(f"chunk inflates past its {limit} bytes")
    return b"".join(parts)


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body (``StreamReader.read(n)`` returns what has arrived, not n bytes)."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise aiohttp.ClientPayloadError(f"body of {declared} bytes is over {limit}")
    parts: list[bytes] = []
    size = 0
    async for part in resp.content.iter_any():
        size += len(part)
        if size > limit:
            raise aiohttp.ClientPayloadError(f"body is over {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def refusal_text(body: bytes) -> str:
    """A provider's error answer as a person reads it, bounded and with no control characters
    (it ends up on a terminal): `` CODE: DETAIL`` for a JSON problem, else ``: EXCERPT``."""
    problem = json_problem(body)
    if problem is not None:
        code = printable(problem["type"].rsplit("/", 1)[-1])[:60]
        detail = printable(str(problem.get("detail", "")))[:200]
        return f" {code}: {detail}" if detail else f" {code}"
    excerpt = printable(body[:400].decode("utf-8", "replace"))[:200]
    return f": {excerpt}" if excerpt else ""


def json_problem(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON problem (an object with a string ``type``), or None: read only up
    to 64 KiB, and never raising on what is not JSON, not UTF-8 or nested past the stack."""
    try:
        problem = json.loads(body) if len(body) <= 65536 else None
    except (ValueError, RecursionError):
        return None
    if isinstance(problem, dict) and isinstance(problem.get("type"), str):
        return problem
    return None


def printable(text: str) -> str:
    """``text`` with control and format characters (escapes, bidi overrides) as spaces, runs of
    spaces as one."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
