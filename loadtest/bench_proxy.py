"""End-to-end benchmark of the browser proxy (``atlas proxy``), run by ``make bench``.

Real processes on 127.0.0.1, all children of this one: a ledger with faucet, nginx (the
origin, ``expires 1h`` so edges cache), a tracker and three paid edges (``--free-mib 0``),
``atlas proxy`` with a funded wallet whose channels are open, and, as the reference, a
plain ``mitmdump`` (``stream_large_bodies=1``, its own confdir) forwarding to the same
nginx. The same client drives both proxies in the same run:

1. **rps**: requests/s for one small object (a repeated URL: a cache HIT at the edge)
   through each proxy, ``hey -x`` at fixed concurrency. Every Atlas request is a
   ``/v1/fetch``, provider look-ups and a paid, verified chunk download; mitmdump only
   forwards. CPU time per request of every process is reported next to it.
2. **latency**: p50 of one small object, one request at a time, direct from nginx, through
   mitmdump and through ``atlas proxy``; the added latency is p50 minus the direct p50.
3. **stream**: a 100 MiB download with ``curl -x`` through each proxy (Atlas: cached at
   the origin edge, full replicas at the other two), the file checked by SHA-256.
4. **rss**: peak RSS growth of each proxy process (``/proc/PID/status`` VmHWM after a
   ``clear_refs`` reset, and VmRSS polled every 10 ms) while 1 GiB goes through it (Atlas:
   a URL no edge has seen, so the origin pull is included).
5. **sizes**: throughput by payload size (16 KiB to 64 MiB), curl direct, through mitmdump
   and through ``atlas proxy`` (cached), timed by curl's ``time_total``: the curve of
   ``docs/performance.md``.

Medians of several repetitions (in rotating order); ``ratio`` = median / reference median.
Usage::

    .venv/bin/python loadtest/bench_proxy.py [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``nginx``, ``curl`` and ``hey`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing. Without ``hey`` the rps part falls back to an
aiohttp client at the same concurrency (named in the report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness import cli, report
from loadtest.harness.children import BenchError, Processes, workspace
from loadtest.harness.machine import (
    machine_lines,
    run_facts,
    tool_version,
    tree_line,
    version_of,
)
from loadtest.harness.procfs import proc_status_kib
from loadtest.harness.rows import KIB, Row, measurement_table, references, size_text
from loadtest.proxybench.bench import FULL, PARTS, QUICK, Config, setup
from loadtest.proxybench.cpu import own_cpu_seconds, system_busy_seconds
from loadtest.proxybench.parts import bench_latency, bench_rps, bench_rss, bench_stream
from loadtest.proxybench.sizes import bench_sizes


def format_value(value: float, unit: str) -> str:
    if unit == "GB/s":
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def render(facts: dict[str, Any], cfg: Config, rows: Sequence[Row], notes: Sequence[str]) -> str:
    head = [
        "Atlas browser proxy benchmark (loadtest/bench_proxy.py)",
        *machine_lines(facts),
        tree_line(facts["uncommitted"]),
        f"disk:     data dirs and output files on {facts['data_dir_filesystem']}",
        f"libs:     mitmproxy {facts['mitmproxy']}, aiohttp {facts['aiohttp']}, "
        f"{facts['nginx']}, {facts['curl']}, rps client {facts['rps_client']}",
        f"mode:     {cfg.mode}, medians of {cfg.reps} (rps), {cfg.latency_reps} (latency), "
        f"{cfg.stream_reps} (stream), {cfg.rss_reps} (rss), {cfg.sizes_reps} (sizes) repetitions; "
        "ratio = median / reference median",
    ]
    return report.render(head, measurement_table(rows, format_value), references(rows), notes)


def ensure_tools(install: bool) -> str:
    """Installs what is missing (with ``install``); returns the rps client to use."""
    missing = cli.missing_tools(("nginx", "curl"))
    wanted = [*missing, "hey"] if install and shutil.which("hey") is None else missing
    if missing and not install:
        cli.refuse_missing("bench_proxy", missing)
    if wanted:
        cli.apt_install(wanted)
    return "hey" if shutil.which("hey") else "aiohttp"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    cli.add_common(parser, reps_help="repetitions of the rps and stream runs")
    cli.add_only(parser, PARTS)
    parser.add_argument(
        "--client",
        choices=("hey", "aiohttp"),
        help="rps client (default: hey when installed, else aiohttp)",
    )
    cli.add_install_deps(parser, "nginx, curl and hey")
    return parser.parse_args(argv)


async def run_all(
    cfg: Config, workdir: Path, only: Sequence[str], client: str, outcome: report.Outcome
) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    try:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.perf_counter()
            try:
                bench = await setup(cfg, workdir, procs, session, client)
            except Exception as exc:
                outcome.fail("setup", exc)
                return
            bench.notes, bench.checks = outcome.notes, outcome.checks
            bench.net.notes, bench.net.checks = outcome.notes, outcome.checks
            bench.notes.append(
                "setup: ledger, nginx, a tracker edge and 3 paid edges (--free-mib 0), funds, "
                f"open channels, {size_text(cfg.size)} cached with full replicas, atlas proxy "
                f"(--max-per-request none --max-per-day none) and mitmdump: "
                f"{time.perf_counter() - started:.1f} s"
            )
            parts: dict[str, Callable[[], Awaitable[list[Row]]]] = {
                "rps": lambda: bench_rps(bench),
                "latency": lambda: bench_latency(bench),
                "stream": lambda: bench_stream(bench),
                "rss": lambda: bench_rss(bench),
                "sizes": lambda: bench_sizes(bench),
            }
            await report.run_parts(parts, only, outcome)
            with contextlib.suppress(OSError, BenchError):
                outcome.checks["proxy_vm_hwm_mib_at_end"] = (
                    proc_status_kib(bench.proxy.pid, "VmHWM") / KIB
                )
    finally:
        procs.close()
        outcome.warn_bad_exits(procs)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if cli.checked_reps(args.reps) is not None:
        cfg = replace(
            cfg,
            reps=args.reps,
            stream_reps=args.reps,
            latency_reps=args.reps,
            sizes_reps=args.reps,
        )
    client = ensure_tools(args.install_deps)
    if args.client == "hey" and client != "hey":
        raise SystemExit("hey is not installed: apt-get install hey, or --install-deps")
    client = args.client or client
    started = time.perf_counter()
    busy, own = system_busy_seconds(), own_cpu_seconds()
    outcome = report.Outcome()
    with workspace("atlas-bench-proxy-") as workdir:
        facts = {
            **run_facts(workdir),
            "mitmproxy": version_of("mitmproxy"),
            "aiohttp": version_of("aiohttp"),
            "nginx": tool_version(["nginx", "-v"]),
            "curl": " ".join(tool_version(["curl", "--version"]).split()[:2]),
            "rps_client": client,
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, client, outcome))
    elapsed = time.perf_counter() - started
    others = (system_busy_seconds() - busy) - (own_cpu_seconds() - own)
    outcome.notes.append(
        f"machine: load average at the end {os.getloadavg()[0]:.2f}; processes not started by "
        f"this benchmark used {max(others, 0.0) / elapsed:.2f} cores on average during the run "
        f"(all cores busy minus this process tree, from /proc/stat and getrusage)"
    )
    print(render(facts, cfg, outcome.rows, outcome.notes))
    print(f"wall time: {elapsed:.1f} s")
    report.write_outcome(
        args.json, "proxy", machine={**facts, "others_cores": max(others, 0.0) / elapsed},
        config=asdict(cfg), wall_time_s=elapsed, outcome=outcome,
    )  # fmt: skip
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop children on SIGTERM
    raise SystemExit(main())
