"""End-to-end benchmark of one edge node: cached chunks paid by voucher (and free) against
nginx (serve), a large body streamed through it (stream), and HTML/CSS/JS bytes on the wire
with and without zstd (pages); ``loadtest/README.md`` says what each row measures. This
module holds what the parts share: the configuration, the servers and the page types."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from loadtest.harness.bench_main import Bench, Option, Run, client_session
from loadtest.harness.children import Proc, module_argv
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


async def measure(run: Run[Config]) -> None:
    from loadtest.edge.pages import bench_pages, collect_pages  # the parts import this module
    from loadtest.edge.serve import bench_serve
    from loadtest.edge.stream import bench_stream

    pages = run.workdir / "pages"
    kinds, ledger = collect_pages(pages), run.procs.ledger()
    origin = run.procs.start("origin", module_argv("loadtest.edge.origin", str(pages)))
    async with client_session() as session:
        env = Env(run, session, ledger, origin)
        await run.parts({"serve": lambda: bench_serve(env), "stream": lambda: bench_stream(env),
                         "pages": lambda: bench_pages(env, pages, kinds)})  # fmt: skip


SPEC = Bench(
    "edge", "Atlas edge benchmark (python -m loadtest run edge)", __doc__, FULL, QUICK,
    lambda c: f"medians of {c.reps} (serve), {c.stream_reps} (stream), {c.page_reps} (pages) "
    "repetitions; ratio = median / reference median", measure, PARTS,
    reps_fields=("reps", "page_reps"), reps_help="repetitions of the serve and pages runs",
    tools=("wrk", "nginx"), libs=("aiohttp", "zstandard"),
    options=(Option("--connections", "connections", "wrk connections (= threads = channels) "
                    "for serve (default 8; the edge allows 32 per client)", 1, 32),),
)  # fmt: skip
