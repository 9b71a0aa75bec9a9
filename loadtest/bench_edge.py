"""End-to-end benchmark of one edge node (``cdn_edge``), run by ``make bench``.

Real processes on 127.0.0.1 (a ledger with faucet, an origin, edges, nginx,
wrk), all children of this one, each measured against a reference taken in the
same run:

1. **serve**: cached 256 KiB chunks, every request carrying a new cumulative
   voucher that the edge checks, persists and accepts, in requests/s with
   ``wrk``; reference: nginx serving the same chunk bytes as files to the same
   wrk and the same Lua script. Each wrk thread has exactly one connection and
   one channel, so its vouchers reach the edge in order. The edge serving the
   same chunks free (no voucher) is measured too, to split the cost.
2. **stream**: peak RSS growth of the edge process (``/proc/PID/status``
   VmHWM and sampled VmRSS) while a 1 GiB response streams from the origin
   through a free edge to a client; and that client's throughput against the
   same client downloading directly from the origin.
3. **pages**: bytes on the wire for the HTML/CSS/JS files shipped in the
   virtualenv's packages, fetched chunk by chunk with and without
   ``Accept-Encoding: zstd``; the zstd cost (at the edge's level) per MiB
   against SHA-256 of the same chunks, and the client-side time per MiB.

Medians of several repetitions; ``ratio`` = median / reference median. Usage::

    .venv/bin/python loadtest/bench_edge.py [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``wrk`` and ``nginx`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.edgebench.env import FULL, PARTS, QUICK, Config, Env
from loadtest.edgebench.origin import run_origin, start_origin
from loadtest.edgebench.pages import bench_pages, collect_pages
from loadtest.edgebench.serve import bench_serve
from loadtest.edgebench.stream import bench_stream
from loadtest.edgebench.vouchers import Signer
from loadtest.harness import cli, report
from loadtest.harness.children import Processes, workspace
from loadtest.harness.machine import machine_lines, run_facts, tool_version, version_of
from loadtest.harness.rows import Row, measurement_table, references


def format_value(value: float, unit: str) -> str:
    if unit in ("req/s", "KiB"):
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:,.1f}"
    return f"{value:.2f}"


def render(facts: dict[str, Any], cfg: Config, rows: Sequence[Row], notes: Sequence[str]) -> str:
    head = [
        "Atlas edge benchmark (loadtest/bench_edge.py)",
        *machine_lines(facts),
        f"disk:     data dirs on {facts['data_dir_filesystem']}",
        f"libs:     aiohttp {facts['aiohttp']}, zstandard {facts['zstandard']}, "
        f"{facts['wrk']}, {facts['nginx']}",
        f"mode:     {cfg.mode}, medians of {cfg.reps} (serve), {cfg.stream_reps} (stream), "
        f"{cfg.page_reps} (pages) repetitions; ratio = median / reference median",
    ]
    return report.render(head, measurement_table(rows, format_value), references(rows), notes)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    cli.add_common(parser, reps_help="repetitions of the serve and pages runs")
    parser.add_argument(
        "--connections",
        type=int,
        help="wrk connections (= threads = channels) for serve (default 8)",
    )
    cli.add_only(parser, PARTS)
    cli.add_install_deps(parser, "wrk and nginx")
    parser.add_argument("--origin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def run_all(cfg: Config, workdir: Path, only: Sequence[str], outcome: report.Outcome) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    signer = Signer()
    try:
        kinds = collect_pages(workdir / "pages")
        ledger = procs.ledger()
        origin = start_origin(procs, workdir / "pages")
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            env = Env(
                cfg, workdir, procs, session, ledger, origin, signer, outcome.notes, outcome.checks
            )
            parts: dict[str, Callable[[], Awaitable[list[Row]]]] = {
                "serve": lambda: bench_serve(env),
                "stream": lambda: bench_stream(env),
                "pages": lambda: bench_pages(env, workdir / "pages", kinds),
            }
            await report.run_parts(parts, only, outcome)
    finally:
        signer.close()
        procs.close()
        outcome.warn_bad_exits(procs)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.origin:
        run_origin(args.port, args.pages)
        return 0
    cfg = QUICK if args.quick else FULL
    if cli.checked_reps(args.reps) is not None:
        cfg = replace(cfg, reps=args.reps, page_reps=args.reps)
    if args.connections is not None:
        if not 1 <= args.connections <= 32:
            raise SystemExit("--connections must be 1..32 (the edge allows 32 per client)")
        cfg = replace(cfg, connections=args.connections)
    cli.ensure_tools("bench_edge", ("wrk", "nginx"), args.install_deps)
    started = time.perf_counter()
    outcome = report.Outcome()
    with workspace("atlas-bench-edge-") as workdir:
        facts = {
            **run_facts(workdir),
            "aiohttp": version_of("aiohttp"),
            "zstandard": version_of("zstandard"),
            "wrk": tool_version(["wrk", "-v"]),
            "nginx": tool_version(["nginx", "-v"]),
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, outcome))
    elapsed = time.perf_counter() - started
    print(render(facts, cfg, outcome.rows, outcome.notes))
    print(f"wall time: {elapsed:.1f} s")
    report.write_outcome(
        args.json, "edge", machine=facts, config=asdict(cfg), wall_time_s=elapsed, outcome=outcome
    )
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
