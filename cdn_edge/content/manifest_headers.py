"""What of an origin response goes into a manifest head: its headers and its size."""

from __future__ import annotations

from requester.protocol import UNKNOWN_SIZE, MalformedMessage
from requester.protocol.manifest import (
    FORBIDDEN_HEADERS,
    MAX_CHUNKS,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MIN_CHUNK_SIZE,
    PARTIAL_CONTENT,
    check_header,
)

__all__ = ["DROPPED_RESPONSE_HEADERS", "manifest_headers", "size_of"]

DROPPED_RESPONSE_HEADERS = FORBIDDEN_HEADERS | {"age", "via", "alt-svc", "server-timing"}


def manifest_headers(headers: list[tuple[str, str]], status: int) -> list[tuple[str, str]]:
    """Origin headers a client needs, minus framing, hop-by-hop and per-user ones (a 206
    keeps its ``content-range``); headers a head could not hold are left out."""
    kept: list[tuple[str, str]] = []
    total = 0
    for name, value in headers:
        lname = name.lower()
        size = len(lname) + len(value.encode("utf-8", "replace"))
        partial = lname == "content-range" and status == PARTIAL_CONTENT
        if (lname in DROPPED_RESPONSE_HEADERS and not partial) or len(kept) >= MAX_HEADERS:
            continue
        if total + size > MAX_HEADER_BYTES:
            continue
        try:
            check_header(lname, value, status)
        except MalformedMessage:
            continue
        kept.append((lname, value))
        total += size
    return kept


def size_of(headers: list[tuple[str, str]]) -> int:
    """Content-Length of an unencoded body (what the chunks will add up to), if given."""
    lowered = {n.lower(): v for n, v in headers}
    length = lowered.get("content-length", "")
    if "content-encoding" in lowered or not length.isdigit() or len(length) > 19:
        return UNKNOWN_SIZE
    return int(length) if int(length) <= MIN_CHUNK_SIZE * MAX_CHUNKS else UNKNOWN_SIZE
