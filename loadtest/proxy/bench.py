"""End-to-end benchmark of the browser proxy (``atlas proxy``) against plain ``mitmdump``
on the harness's network of paid edges; ``loadtest/README.md`` says what each row
measures."""

from __future__ import annotations

import time

from loadtest.harness.bench_main import Bench, Run, client_session
from loadtest.harness.rows import size_text
from loadtest.proxy.downloads import bench_rss, bench_sizes, bench_stream
from loadtest.proxy.proxies import FULL, PARTS, QUICK, Config, setup
from loadtest.proxy.small import bench_latency, bench_rps


async def measure(run: Run[Config]) -> None:
    async with client_session() as session:
        started = time.perf_counter()
        bench = await setup(run, session)
        run.notes.append(
            "setup: ledger, nginx, a tracker edge and 3 paid edges (--free-mib 0), funds, "
            f"open channels, {size_text(run.cfg.size)} cached with full replicas, atlas proxy "
            f"(--max-per-request none --max-per-day none) and mitmdump: "
            f"{time.perf_counter() - started:.1f} s"
        )
        await run.parts({"rps": lambda: bench_rps(bench), "latency": lambda: bench_latency(bench),
                         "stream": lambda: bench_stream(bench), "rss": lambda: bench_rss(bench),
                         "sizes": lambda: bench_sizes(bench)})  # fmt: skip


SPEC = Bench(
    "proxy", "Atlas browser proxy benchmark (python -m loadtest run proxy)", __doc__, FULL,
    QUICK, lambda c: f"medians of {c.reps} (rps), {c.latency_reps} (latency), {c.stream_reps} "
    f"(stream), {c.rss_reps} (rss), {c.sizes_reps} (sizes) repetitions; ratio = median / "
    "reference median", measure, PARTS,
    reps_fields=("reps", "stream_reps", "latency_reps", "sizes_reps"),
    reps_help="repetitions of the rps and stream runs", tools=("nginx", "curl", "hey"),
    libs=("mitmproxy", "aiohttp"),
)  # fmt: skip
