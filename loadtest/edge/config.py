"""What every part of the edge benchmark shares: its configuration, servers and page types."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from loadtest.harness.bench_main import Run
from loadtest.harness.children import Proc
from loadtest.harness.rows import GIB, MIB

SERVE_CHUNKS = 16
"""Distinct chunks of the served content (4 MiB), cycled through by every connection."""
PAGE_SUFFIXES = {".html": "html", ".htm": "html", ".css": "css", ".js": "js", ".mjs": "js"}
PAGE_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "application/javascript; charset=utf-8",
}
PARTS = ("serve", "stream", "pages")


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    serve_seconds: int  # length of one measured wrk run
    warmup_seconds: int
    connections: int  # wrk threads = connections = channels (one of each per thread)
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
