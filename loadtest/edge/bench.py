"""End-to-end benchmark of one edge node: cached chunks paid by voucher (and free) against
nginx (serve), a large body streamed through it (stream), and HTML/CSS/JS bytes on the wire
with and without zstd (pages); ``loadtest/README.md`` says what each row measures. Usage::

    python -m loadtest run edge [--quick] [--reps N] [--json PATH] [--install-deps]
"""

from __future__ import annotations

from collections.abc import Sequence

from loadtest.edge.config import FULL, PARTS, QUICK, Config, Env
from loadtest.edge.origin import start_origin
from loadtest.edge.pages import bench_pages, collect_pages
from loadtest.edge.serve import bench_serve
from loadtest.edge.stream import bench_stream
from loadtest.harness.bench_main import Bench, Option, Run, bench_main, client_session

SPEC = Bench(
    "edge",
    "Atlas edge benchmark (python -m loadtest run edge)",
    __doc__,
    FULL,
    QUICK,
    lambda c: (
        f"medians of {c.reps} (serve), {c.stream_reps} (stream), {c.page_reps} (pages) "
        "repetitions; ratio = median / reference median"
    ),
    PARTS,
    reps_fields=("reps", "page_reps"),
    reps_help="repetitions of the serve and pages runs",
    tools=("wrk", "nginx"),
    libs=("aiohttp", "zstandard"),
    options=(
        Option(
            "--connections",
            "connections",
            int,
            "wrk connections (= threads = channels) for serve (default 8)",
            lambda value: 1 <= value <= 32,
            "--connections must be 1..32 (the edge allows 32 per client)",
        ),
    ),
)


async def measure(run: Run[Config]) -> None:
    kinds = collect_pages(run.workdir / "pages")
    ledger = run.procs.ledger()
    origin = start_origin(run.procs, run.workdir / "pages")
    async with client_session() as session:
        env = Env(run, session, ledger, origin)
        await run.parts(
            {
                "serve": lambda: bench_serve(env),
                "stream": lambda: bench_stream(env),
                "pages": lambda: bench_pages(env, run.workdir / "pages", kinds),
            }
        )


def main(argv: Sequence[str] | None = None) -> int:
    return bench_main(SPEC, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
