"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

Real processes on 127.0.0.1, all children of this one: a ledger with faucet, nginx (the
origin, and the reference), a tracker and three paid edges (``--free-mib 0``). Each
measurement is compared with a reference taken in the same run:

1. **fetch**: a 100 MiB paid, verified download with ``atlas fetch URL -o FILE --json``
   (wall time of the whole command) from three edges, against ``curl -o FILE`` reading the
   same file from nginx. Measured twice: *first* (a new URL, so the origin edge pulls the
   body from nginx while the client downloads and the other two edges replicate from it:
   origin fetch included) and *cached* (a URL the edges hold: an nginx ``Cache-Control:
   max-age`` response, a cache HIT at the origin edge, full replicas at the others).
2. **scaling**: the cached download with ``--edge`` lists of 1, 2 and 3 edges, with the
   chunks each provider served (from the ``--json`` summary).
3. **rss**: peak RSS of the ``atlas fetch`` process (``/proc/PID/status`` VmHWM and VmRSS
   polled every 10 ms) downloading 1 GiB; reference: the same command downloading 1 MiB.

Medians of several repetitions (in rotating order); ``ratio`` = median / reference
median. Usage::

    .venv/bin/python -m loadtest run sdk [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``nginx`` and ``curl`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness import cli, report
from loadtest.harness.children import Processes, workspace
from loadtest.harness.machine import (
    machine_lines,
    run_facts,
    tool_version,
    tree_line,
    version_of,
)
from loadtest.harness.procfs import RSS_POLL
from loadtest.harness.rows import (
    GB,
    GIB,
    KIB,
    Row,
    make_row,
    measurement_table,
    references,
    size_text,
)
from loadtest.sdkbench.fetch import bench_fetch
from loadtest.sdkbench.net import EDGES, FULL, QUICK, Config, Net, Run, build_net

PARTS = ("fetch", "rss")


# --- 3: peak RSS of atlas fetch ---------------------------------------------------------------


async def bench_rss(net: Net) -> list[Row]:
    cfg, loop = net.cfg, asyncio.get_running_loop()
    big, small, rates = [], [], []
    for rep in range(cfg.rss_reps):

        def run_big(rep: int = rep) -> Run:
            return net.atlas_fetch(f"{net.nginx.url}/big.bin?rss={rep}", EDGES, "big.bin")

        def run_small(rep: int = rep) -> Run:
            return net.atlas_fetch(f"{net.nginx.url}/small.bin?rss={rep}", EDGES, "small.bin")

        order = [run_big, run_small] if rep % 2 == 0 else [run_small, run_big]
        for step in order:
            run = await loop.run_in_executor(None, step)
            if step is run_big:
                big.append(run.peak_rss_kib / KIB)
                rates.append(cfg.rss_size / run.seconds / GB)
                net.checks.setdefault("rss_chunks_per_provider", []).append(
                    {
                        net.names().get(u, u): p["chunks"]
                        for u, p in run.summary["providers"].items()
                    }
                )
            else:
                small.append(run.peak_rss_kib / KIB)
    text = size_text(cfg.rss_size)
    net.notes.append(
        f"rss: atlas fetch of {text} from 3 edges, first fetch (origin pull included); peak = "
        f"max of VmHWM and VmRSS polled every {RSS_POLL * 1000:.0f} ms; per rep MiB: "
        + ", ".join(f"{b:.1f}" for b in big)
        + f"; {text} at "
        + ", ".join(f"{r:.3f}" for r in rates)
        + " GB/s wall"
    )
    net.checks["rss"] = {"bytes": cfg.rss_size, "peak_mib": big, "reference_peak_mib": small}
    return [
        make_row(
            "fetch_peak_rss",
            f"atlas fetch {text}: peak RSS of the process",
            "MiB",
            big,
            f"the same command fetching {size_text(cfg.rss_small)} (fixed cost)",
            small,
            "< 100 MiB",
            lambda _m, _r: max(big) < 100,
        )
    ]


# --- report -----------------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    return f"{value:,.1f}" if unit == "MiB" else f"{value:.3f}"


def render(
    facts: dict[str, Any],
    cfg: Config,
    rows: Sequence[Row],
    notes: Sequence[str],
    sections: dict[str, list[str]],
) -> str:
    head = [
        "Atlas requester benchmark (loadtest/bench_sdk.py)",
        *machine_lines(facts),
        tree_line(facts["uncommitted"]),
        f"disk:     data dirs and output files on {facts['data_dir_filesystem']}",
        f"libs:     aiohttp {facts['aiohttp']}, zstandard {facts['zstandard']}, "
        f"{facts['nginx']}, {facts['curl']}",
        f"mode:     {cfg.mode}, medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) "
        "repetitions; ratio = median / reference median",
    ]
    table = measurement_table(rows, format_value)
    return report.render(head, table, references(rows), notes, sections)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    cli.add_common(parser, reps_help="repetitions of the fetch runs")
    cli.add_only(parser, PARTS)
    cli.add_install_deps(parser, "nginx and curl")
    return parser.parse_args(argv)


async def run_all(cfg: Config, workdir: Path, only: Sequence[str], outcome: report.Outcome) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    try:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.perf_counter()
            try:
                net = await build_net(cfg, workdir, procs, session)
            except Exception as exc:
                outcome.fail("setup", exc)
                return
            net.notes, net.checks, net.sections = outcome.notes, outcome.checks, outcome.sections
            net.notes.append(
                f"setup: ledger, nginx, a tracker edge and {EDGES} paid edges "
                f"(--free-mib 0, --tracker), funds and open channels: "
                f"{time.perf_counter() - started:.1f} s"
            )
            parts: dict[str, Callable[[], Awaitable[list[Row]]]] = {
                "fetch": lambda: bench_fetch(net),
                "rss": lambda: bench_rss(net),
            }
            await report.run_parts(parts, only, outcome)
    finally:
        procs.close()
        outcome.warn_bad_exits(procs)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if cli.checked_reps(args.reps) is not None:
        cfg = replace(cfg, reps=args.reps)
    cli.ensure_tools("bench_sdk", ("nginx", "curl"), args.install_deps)
    started = time.perf_counter()
    outcome = report.Outcome()
    with workspace("atlas-bench-sdk-") as workdir:
        facts = {
            **run_facts(workdir),
            "aiohttp": version_of("aiohttp"),
            "zstandard": version_of("zstandard"),
            "nginx": tool_version(["nginx", "-v"]),
            "curl": " ".join(tool_version(["curl", "--version"]).split()[:2]),
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, outcome))
        used = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
        outcome.notes.append(f"disk: {used / GIB:.1f} GiB in the temporary directory at the end")
    elapsed = time.perf_counter() - started
    outcome.notes.append(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(render(facts, cfg, outcome.rows, outcome.notes, outcome.sections))
    print(f"wall time: {elapsed:.1f} s")
    report.write_outcome(
        args.json, "sdk", machine=facts, config=asdict(cfg), wall_time_s=elapsed, outcome=outcome
    )
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop children on SIGTERM
    raise SystemExit(main())
