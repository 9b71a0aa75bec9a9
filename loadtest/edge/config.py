"""What every part of the edge benchmark shares: its settings, configuration and servers."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from cdn_edge import wire_encoding
from loadtest.edge.vouchers import Signer
from loadtest.harness.bench_main import Run
from loadtest.harness.children import Proc
from loadtest.harness.rows import GIB, KIB, MIB

PIECE = 64 * KIB
"""Origin write size (what a socket read hands over)."""
NGINX_WORKERS = 1
"""One nginx worker process, as the edge is one process (plus helper threads)."""
SERVE_CHUNKS = 16
"""Distinct chunks of the served content (4 MiB), cycled through by every connection."""
STREAM_WORKERS = 2
"""Chunk requests in flight while streaming, as requester/downloader.py's per_provider default."""
WARMUP_MAX_RATE = 12_000.0
"""Vouchers per second the edge warm-up run is supplied for (far above what it serves)."""
SUPPLY_SAFETY = 1.6
"""Vouchers signed per measured run = warm-up rate x duration x this, plus a margin."""
VOUCHER_MARGIN = 200
ZSTD_LEVEL = wire_encoding.LEVEL
PAGE_SUFFIXES = {".html": "html", ".htm": "html", ".css": "css", ".js": "js", ".mjs": "js"}
PAGE_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "application/javascript; charset=utf-8",
}
PARTS = ("serve", "stream", "pages")
PAGE_MIN_SIZE = 1 * KIB
PAGE_MAX_TOTAL = 16 * MIB


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    serve_seconds: int
    """Length of one measured wrk run."""
    warmup_seconds: int
    connections: int
    """wrk threads = connections = channels (one of each per thread)."""
    stream_bytes: int
    stream_reps: int
    page_reps: int


FULL = Config("full", 5, 4, 2, 8, GIB, 3, 5)
QUICK = Config("quick", 1, 1, 1, 2, 32 * MIB, 1, 1)


@dataclass
class Env:
    """What the parts share: the run (configuration, processes, notes, checks) and servers."""

    run: Run[Config]
    session: aiohttp.ClientSession
    ledger: Proc
    origin: Proc
    signer: Signer
