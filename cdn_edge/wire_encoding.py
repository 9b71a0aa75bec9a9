"""Compressing chunks for the wire when that makes them cheaper.

Text-like content goes out zstd-compressed to requesters that accept it; the
price is computed on the compressed size, and chunk hashes stay over the
uncompressed bytes, so compression changes the bill, never the proof.
"""

from __future__ import annotations

import asyncio
import threading

import zstandard

LEVEL = 3
MIN_SAVING = 0.05
_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE_TYPES = frozenset(
    {
        "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
        "application/wasm", "image/svg+xml", "application/manifest+json", "application/ld+json",
        "application/x-javascript", "application/rss+xml", "application/atom+xml",
    }
)  # fmt: skip
_local = threading.local()


def compressible(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_COMPRESSIBLE_PREFIXES) or media in _COMPRESSIBLE_TYPES


def accepts_zstd(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "zstd":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _compress(data: bytes) -> bytes:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return bytes(compressor.compress(data))


async def for_wire(data: bytes, content_type: str | None, accept_encoding: str | None
                   ) -> tuple[bytes, str | None]:  # fmt: skip
    """The bytes to send and their Content-Encoding (None when sent as is)."""
    if not (compressible(content_type) and accepts_zstd(accept_encoding)) or len(data) < 256:
        return data, None
    packed = await asyncio.get_running_loop().run_in_executor(None, _compress, data)
    if len(packed) > len(data) * (1 - MIN_SAVING):
        return data, None
    return packed, "zstd"
