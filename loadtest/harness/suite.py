"""Every Atlas benchmark in one run (``make bench``): one table, docs/performance.md, a plot.

Runs each benchmark of BENCHMARKS as its own process (``python -m loadtest.NAME.bench
--json ...``, so one failing or hanging is stopped and reported without losing the
others), then prints one table with each Atlas median beside the reference measured in the
same run, its ratio and the goal from the issues. A full run rewrites
``docs/performance.md`` and its throughput plot; every benchmark's own text report and
JSON go to ``loadtest/reports/bench-DATE/``. ``--quick`` runs every benchmark's smoke mode
and writes the document into the reports directory, never over docs/performance.md
(unless ``--doc`` says so)::

    .venv/bin/python -m loadtest bench [--quick] [--only NAME ...] [--install-deps]
                                       [--doc PATH | --no-doc] [--reports DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher import processes
from loadtest import REPO
from loadtest.harness.children import child_env, module_argv
from loadtest.harness.suite_doc import PLOT_NAME, plot, render, throughput_by_size
from loadtest.harness.suite_table import goal_counts, lines_of, text_table

DOC = REPO / "docs" / "performance.md"
STOP_GRACE = 60.0
"""Seconds a benchmark gets to stop its own children after SIGTERM."""


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    script: str
    """What the document calls it (the name its program had before the package)."""
    suite_args: tuple[str, ...]
    """Arguments of a full suite run (fewer repetitions where that keeps the suite short)."""
    system_tools: bool
    """Takes ``--install-deps`` (needs Debian packages such as nginx, wrk, curl, hey)."""
    budget_s: float
    """Longest a full run may take before it is stopped (half of it with ``--quick``)."""


BENCHMARKS = (
    Benchmark("protocol", "bench_protocol.py", (), False, 180),
    Benchmark("edge", "bench_edge.py", (), True, 400),
    Benchmark("sdk", "bench_sdk.py", ("--reps", "3"), True, 400),
    Benchmark("proxy", "bench_proxy.py", (), True, 400),
    Benchmark("torrent", "bench_torrent.py", (), False, 400),
)
NAMES = tuple(b.name for b in BENCHMARKS)


def module_of(name: str) -> str:
    """The module whose ``main`` runs benchmark ``name``."""
    return f"loadtest.{name}.bench"


@dataclass(frozen=True, slots=True)
class BenchRun:
    benchmark: Benchmark
    seconds: float
    problem: str
    """Empty when the run exited 0 and wrote its report."""
    report: dict[str, Any] | None
    log: Path


def run_benchmark(bench: Benchmark, outdir: Path, *, quick: bool, install: bool) -> BenchRun:
    """Runs ``bench`` to completion (or its budget) with its output in ``outdir/NAME.txt``
    and its report in ``outdir/NAME.json``."""
    report_path, log = outdir / f"{bench.name}.json", outdir / f"{bench.name}.txt"
    argv = module_argv(module_of(bench.name), "--json", str(report_path))
    argv += ["--quick"] if quick else list(bench.suite_args)
    argv += ["--install-deps"] if install and bench.system_tools else []
    budget = bench.budget_s / 2 if quick else bench.budget_s
    started, problem = time.monotonic(), ""
    child = processes.spawn(argv, name=bench.name, env=child_env(), cwd=REPO, log=log)
    try:
        code = child.wait(budget)
    except subprocess.TimeoutExpired:  # SIGTERM: it stops its own servers, then exits
        code = child.stop(STOP_GRACE)
        problem = f"stopped after its budget of {budget:.0f} s"
    seconds = time.monotonic() - started
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = None
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
        print(f"{bench.name}: running {module_of(bench.name)} ...", flush=True)
        run = run_benchmark(bench, outdir, quick=args.quick, install=args.install_deps)
        runs.append(run)
        print(f"{bench.name}: {run.seconds:.0f} s, {run.problem or 'ok'} ({run.log})", flush=True)
    wall = time.monotonic() - started
    lines = [line for run in runs if run.report for line in lines_of(run.report)]
    met, missed = goal_counts(lines)
    print(f"\nAtlas benchmark suite, {now:%Y-%m-%d %H:%M} UTC, {wall / 60:.1f} min")
    print("medians; ratio = Atlas / reference, measured in the same run; n = repetitions\n")
    print("\n".join(text_table(lines)))
    print(f"\ngoals: {met} met, {missed} missed")
    problems = [f"{run.benchmark.name}: {run.problem}" for run in runs if run.problem]
    for problem in problems:
        print(f"PROBLEM {problem} (see {outdir})")
    if doc is not None:
        sizes = throughput_by_size(runs)
        if sizes is not None:
            plot(sizes, doc.with_name(PLOT_NAME), f"Throughput by payload size, {now:%Y-%m-%d}")
        given = sys.argv[1:] if argv is None else list(argv)
        command = shlex.join([".venv/bin/python", "-m", "loadtest", "bench", *given])
        load = (load_start, os.getloadavg()[0])
        text = render(runs, lines, started=f"{now:%Y-%m-%d %H:%M}", wall_s=wall,
                      command=command, load=load, plot_written=sizes is not None)  # fmt: skip
        doc.write_text(text, encoding="utf-8")
        print(f"wrote {doc}" + (f" and {doc.with_name(PLOT_NAME)}" if sizes else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
