"""Every Atlas benchmark in one run (``make bench``): one table, docs/performance.md, a plot.

Each benchmark of BENCHMARKS runs as its own process (``python -m loadtest run NAME
--json ...``: one failing or over its budget is stopped and reported without losing the
others). A full run rewrites ``docs/performance.md`` and its plot; ``--quick`` writes the
document beside the reports in ``loadtest/reports/bench-DATE/`` unless ``--doc`` says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import REPO
from loadtest.harness import suite_doc
from loadtest.harness.children import module_argv, run_logged
from loadtest.harness.rows import table

DOC = REPO / "docs" / "performance.md"
STOP_GRACE = 60.0
"""Seconds a benchmark gets to stop its own children after SIGTERM."""


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    suite_args: tuple[str, ...]  # of a full suite run (fewer repetitions to keep it short)
    system_tools: bool  # takes ``--install-deps`` (needs nginx, wrk, curl, hey, ...)
    budget_s: float  # longest a full run may take before it is stopped (half with --quick)


BENCHMARKS = (
    Benchmark("protocol", (), False, 180),
    Benchmark("edge", (), True, 400),
    Benchmark("sdk", ("--reps", "3"), True, 400),
    Benchmark("proxy", (), True, 400),
    Benchmark("torrent", (), False, 400),
    Benchmark("market", (), False, 150),
)
NAMES = tuple(b.name for b in BENCHMARKS)


@dataclass(frozen=True, slots=True)
class BenchRun:
    benchmark: Benchmark
    seconds: float
    problem: str  # empty when the run exited 0 and wrote its report
    report: dict[str, Any] | None
    log: Path


def run_benchmark(bench: Benchmark, outdir: Path, *, quick: bool, install: bool) -> BenchRun:
    """Runs ``bench`` to completion (or its budget) with its output in ``outdir/NAME.txt``
    and its report in ``outdir/NAME.json``."""
    report_path, log = outdir / f"{bench.name}.json", outdir / f"{bench.name}.txt"
    argv = module_argv("loadtest", "run", bench.name, "--json", str(report_path))
    argv += ["--quick"] if quick else list(bench.suite_args)
    argv += ["--install-deps"] if install and bench.system_tools else []
    budget = bench.budget_s / 2 if quick else bench.budget_s
    started = time.monotonic()
    code, overran = run_logged(argv, bench.name, log, budget, STOP_GRACE)
    problem = f"stopped after its budget of {budget:.0f} s" if overran else ""
    seconds, report = time.monotonic() - started, None
    with contextlib.suppress(OSError, ValueError):
        report = json.loads(report_path.read_text(encoding="utf-8"))
    report = report if isinstance(report, dict) else None
    problem = problem or (f"exited {code}" if code else "" if report else "wrote no report")
    return BenchRun(bench, seconds, problem, report, log)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser("python -m loadtest bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark's smoke mode")
    parser.add_argument("--only", action="append", choices=NAMES, help="repeatable")
    parser.add_argument("--install-deps", action="store_true",
                        help="apt-get install nginx, wrk, curl and hey when missing")  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--doc", type=Path, metavar="PATH", help=f"document to write ({DOC})")
    where.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument("--reports", type=Path, metavar="DIR", help="where the reports go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    now = datetime.now(UTC)
    outdir = args.reports or REPO / "loadtest" / "reports" / f"bench-{now:%Y%m%d-%H%M%S}"
    outdir.mkdir(parents=True, exist_ok=True)
    doc = None if args.no_doc else args.doc or (outdir / DOC.name if args.quick else DOC)
    load_start, started = os.getloadavg()[0], time.monotonic()
    runs: list[BenchRun] = []
    for bench in [b for b in BENCHMARKS if b.name in (args.only or NAMES)]:
        print(f"{bench.name}: running python -m loadtest run {bench.name} ...", flush=True)
        run = run_benchmark(bench, outdir, quick=args.quick, install=args.install_deps)
        runs.append(run)
        print(f"{bench.name}: {run.seconds:.0f} s, {run.problem or 'ok'} ({run.log})", flush=True)
    wall = time.monotonic() - started
    lines = [line for run in runs if run.report for line in suite_doc.lines_of(run.report)]
    met, missed = suite_doc.goal_counts(lines)
    print(f"\nAtlas benchmark suite, {now:%Y-%m-%d %H:%M} UTC, {wall / 60:.1f} min")
    print("medians; ratio = Atlas / reference, measured in the same run; n = repetitions\n")
    print("\n".join(table(suite_doc.HEADER, [line.cells for line in lines], suite_doc.LEFT)))
    print(f"\ngoals: {met} met, {missed} missed")
    problems = [f"{run.benchmark.name}: {run.problem}" for run in runs if run.problem]
    for problem in problems:
        print(f"PROBLEM {problem} (see {outdir})")
    if doc is not None:
        sizes, plot = suite_doc.checks_of(runs, "proxy", "sizes"), doc.with_name(suite_doc.PLOT)
        if sizes:
            suite_doc.plot(sizes, plot, f"Throughput by payload size, {now:%Y-%m-%d}")
        if edges := suite_doc.checks_of(runs, "sdk", "edges"):
            title = f"Cached atlas fetch by number of edges, {now:%Y-%m-%d}"
            suite_doc.edges_plot(edges, doc.with_name(suite_doc.EDGES_PLOT), title)
        if market := suite_doc.checks_of(runs, "market", "market"):
            title = f"Rate by bid on one market edge, {now:%Y-%m-%d}"
            suite_doc.market_plot(market, doc.with_name(suite_doc.MARKET_PLOT), title)
        given = sys.argv[1:] if argv is None else list(argv)
        command = shlex.join([".venv/bin/python", "-m", "loadtest", "bench", *given])
        text = suite_doc.render(runs, lines, started=f"{now:%Y-%m-%d %H:%M}", wall_s=wall,
                                command=command, load=(load_start, os.getloadavg()[0]),
                                plot_written=bool(sizes), market=bool(market),
                                edges=bool(edges))  # fmt: skip
        doc.write_text(text, encoding="utf-8")
        print(f"wrote {doc}" + (f" and {plot}" if sizes else ""))
    return 1 if problems else 0
