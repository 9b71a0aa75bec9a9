"""End-to-end benchmark of one edge node: cached chunks paid by voucher (and free) against
nginx (serve), a large body streamed through it (stream), and HTML/CSS/JS bytes on the wire
with and without zstd (pages); ``loadtest/README.md`` says what each row measures."""

from __future__ import annotations

from loadtest.edge.config import FULL, PARTS, QUICK, Config, Env
from loadtest.edge.origin import start_origin
from loadtest.edge.pages import bench_pages, collect_pages
from loadtest.edge.serve import bench_serve
from loadtest.edge.stream import bench_stream
from loadtest.harness.bench_main import Bench, Option, Run, client_session


async def measure(run: Run[Config]) -> None:
    pages = run.workdir / "pages"
    kinds, ledger = collect_pages(pages), run.procs.ledger()
    origin = start_origin(run.procs, pages)
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
