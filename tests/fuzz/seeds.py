"""Seed inputs for the fuzz targets, made from the test vectors (tests/vectors/).

A coverage-guided fuzzer gets past magic bytes, length prefixes and signatures
much sooner when it starts from valid messages; the vectors are exactly that,
and they are fixed, so every run starts from the same corpus.
"""

from __future__ import annotations

import gzip
import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import zstandard

from requester.protocol import ContentPublisher, ManifestHead, NodeKey, UrlSource

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


@cache
def _load(name: str) -> Any:
    return json.loads((VECTORS / f"{name}.json").read_text())


def heads() -> list[bytes]:
    return [bytes.fromhex(h["encoded"]) for h in _load("manifest")["heads"]]


def url_head() -> ManifestHead:
    """The vectors' URL head: statements and the seal are checked against it."""
    return ManifestHead.decode(heads()[0])


def statements() -> list[bytes]:
    return [bytes.fromhex(s["encoded"]) for s in _load("manifest")["content"]["statements"]]


def seal() -> bytes:
    return bytes.fromhex(_load("manifest")["content"]["seal"]["encoded"])


def vector_body() -> bytes:
    """The 600000-byte body the statements and seal describe."""
    return bytes((i * 31 + 7) % 251 for i in range(600000))


SMALL_CHUNK = 16 * 1024


@cache
def small_content() -> tuple[ManifestHead, list[bytes], bytes, bytes]:
    """A head with the smallest chunk size, its statements, seal and 20000-byte body, signed
    with the vectors' edge key: inputs that verify stay small enough to fuzz quickly."""
    key = NodeKey(bytes.fromhex(_load("manifest")["edge"]["seed"]))
    head = ManifestHead.create(
        key,
        source=UrlSource("https://origin.example/small"),
        status=200,
        headers=[("content-type", "text/plain")],
        created_at=1_700_000_000,
        chunk_size=SMALL_CHUNK,
    )
    body = vector_body()[:20000]
    publisher = ContentPublisher(key, head)
    signed = publisher.feed(body)
    last, sealed = publisher.finish()
    statements = [c.statement.encode() for c in [*signed, *last]]
    return head, statements, sealed.encode(), body


def quotes() -> list[bytes]:
    return [bytes.fromhex(q["encoded"]) for q in _load("quote")["quotes"]]


def vouchers() -> list[bytes]:
    return [bytes.fromhex(v["encoded"]) for v in _load("voucher")["vouchers"]]


def voucher_headers() -> list[str]:
    return [v["header"] for v in _load("voucher")["vouchers"]]


def every_message() -> list[bytes]:
    return [*heads(), *statements(), seal(), *quotes(), *vouchers()]


SAMPLE_TEXT = b"<html><body>" + b"Atlas edge test content, a row of it. " * 40 + b"</body></html>"


def compressed(coding: str) -> list[bytes]:
    """Small bodies in ``coding``: one member/frame, two, an empty one, a cut one."""
    one: bytes
    if coding == "gzip":
        one = gzip.compress(SAMPLE_TEXT, mtime=0)
        two = one + gzip.compress(b"second member", mtime=0)
        empty = gzip.compress(b"", mtime=0)
    elif coding == "deflate":
        one = zlib.compress(SAMPLE_TEXT)
        raw = zlib.compressobj(wbits=-15)
        two = raw.compress(SAMPLE_TEXT) + raw.flush()
        empty = zlib.compress(b"")
    elif coding == "br":
        one = brotli.compress(SAMPLE_TEXT)
        two = brotli.compress(SAMPLE_TEXT * 3, quality=1)
        empty = brotli.compress(b"")
    else:
        cctx = zstandard.ZstdCompressor()
        one = cctx.compress(SAMPLE_TEXT)
        two = one + cctx.compress(b"second frame")
        empty = cctx.compress(b"")
    return [one, two, empty, one[: len(one) // 2], one + b"trailing"]
