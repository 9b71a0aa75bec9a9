"""Deterministic content: blobs whose every 256 KiB chunk is distinct and self-describing."""

from __future__ import annotations

import functools
import hashlib
import random
from pathlib import Path

from loadtest.harness.children import BenchError
from loadtest.harness.rows import CHUNK, MIB

BLOB_BUFFER = 4 * MIB
BLOB_SEED = 0x41544C53


@functools.cache
def blob_buffer() -> bytes:
    """Built once, on first use, in whichever process needs it."""
    return random.Random(BLOB_SEED).randbytes(BLOB_BUFFER)


def blob_range(offset: int, size: int, salt: int) -> bytes:
    """Bytes ``offset .. offset+size`` of blob ``salt``: a repeated random buffer whose every
    256 KiB chunk starts with its index and the salt, so no two chunks are alike (the chunk
    store deduplicates by hash) and a client can check order and origin for free."""
    buffer = blob_buffer()
    out = bytearray()
    start = offset % BLOB_BUFFER
    while len(out) < size:
        take = min(size - len(out), BLOB_BUFFER - start)
        out += buffer[start : start + take]
        start = 0
    first = -(-offset // CHUNK) * CHUNK
    for boundary in range(first, offset + size, CHUNK):
        stamp = (boundary // CHUNK).to_bytes(8, "big") + salt.to_bytes(8, "big")
        at = boundary - offset
        out[at : at + 16] = stamp[: max(0, min(16, size - at))]
    return bytes(out)


def check_chunk(body: bytes, index: int, salt: int, expected_size: int) -> None:
    stamp = index.to_bytes(8, "big") + salt.to_bytes(8, "big")
    if len(body) != expected_size or body[:16] != stamp[: min(16, expected_size)]:
        raise BenchError(f"chunk {index} of blob {salt}: wrong size or bytes ({len(body)} B)")


def write_blob(path: Path, size: int, salt: int) -> str:
    """``size`` bytes of blob ``salt`` (every 256 KiB chunk distinct) to ``path``; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for offset in range(0, size, BLOB_BUFFER):
            piece = blob_range(offset, min(BLOB_BUFFER, size - offset), salt)
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
