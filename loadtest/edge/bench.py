"""End-to-end benchmark of one edge node: cached chunks paid by voucher (and free) against
nginx (serve), a large body streamed through it (stream), and HTML/CSS/JS bytes on the wire
with and without zstd (pages); ``loadtest/README.md`` says what each row measures. This
module holds what the parts share: the configuration, the servers and the page types, and
the benchmark's loopback origin, a child process of its own (``python -m loadtest.edge.bench
PAGES_DIR``): ``/blob/{n}?salt=S``, n bytes of blob S streamed as made, and ``/pages/{name}``,
the files of PAGES_DIR with their content types."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from loadtest.harness.bench_main import Bench, Option, Run, client_session
from loadtest.harness.blobs import blob_range
from loadtest.harness.children import Proc, module_argv
from loadtest.harness.rows import GIB, KIB, MIB

SERVE_CHUNKS = 16
"""Distinct chunks of the served content (4 MiB), cycled through by every connection."""
PAGE_SUFFIXES = {".html": "html", ".htm": "html", ".css": "css", ".js": "js", ".mjs": "js"}
PAGE_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "application/javascript; charset=utf-8",
}
PARTS = ("serve", "stream", "pages")
PIECE = 64 * KIB  # the origin's blob write size (what a socket read hands over)


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
    origin = run.procs.start("origin", module_argv("loadtest.edge.bench", str(pages)))
    async with client_session() as session:
        env = Env(run, session, ledger, origin)
        await run.parts({"serve": lambda: bench_serve(env), "stream": lambda: bench_stream(env),
                         "pages": lambda: bench_pages(env, pages, kinds)})  # fmt: skip


async def serve_origin(pages: Path) -> None:
    """The origin (this module's ``__main__``) until SIGINT or SIGTERM."""

    async def blob(request: web.Request) -> web.StreamResponse:
        total, salt = int(request.match_info["n"]), int(request.query.get("salt", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = total
        await response.prepare(request)
        for sent in range(0, total, PIECE):
            await response.write(blob_range(sent, min(PIECE, total - sent), salt))
        await response.write_eof()
        return response

    async def page(request: web.Request) -> web.Response:
        path = pages / request.match_info["name"]
        if path.parent != pages or path.name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        kind = PAGE_TYPES.get(PAGE_SUFFIXES.get(path.suffix, ""), "application/octet-stream")
        return web.Response(body=path.read_bytes(), headers={"Content-Type": kind})

    app = web.Application()
    app.add_routes([web.get("/blob/{n:[0-9]+}", blob), web.get("/pages/{name}", page)])
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=75.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, bound = runner.addresses[0][:2]
    sys.stdout.write(json.dumps({"listening": f"http://{host}:{bound}"}) + "\n")
    sys.stdout.flush()
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


SPEC = Bench(
    "edge", "Atlas edge benchmark (python -m loadtest run edge)", __doc__, FULL, QUICK,
    lambda c: f"medians of {c.reps} (serve), {c.stream_reps} (stream), {c.page_reps} (pages) "
    "repetitions; ratio = median / reference median", measure, PARTS,
    reps_fields=("reps", "page_reps"), reps_help="repetitions of the serve and pages runs",
    tools=("wrk", "nginx"), libs=("aiohttp", "zstandard"),
    options=(Option("--connections", "connections", "wrk connections (= threads = channels) "
                    "for serve (default 8; the edge allows 32 per client)", 1, 32),),
)  # fmt: skip


if __name__ == "__main__":
    asyncio.run(serve_origin(Path(sys.argv[1])))
