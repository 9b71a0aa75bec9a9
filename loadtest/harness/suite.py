"""Every Atlas benchmark in one run (``make bench``): one table, docs/performance.md, a plot.

Runs ``bench_protocol``, ``bench_edge``, ``bench_sdk``, ``bench_proxy`` and
``bench_torrent`` one after the other, each as its own process with ``--json`` (so one
failing or hanging is stopped and reported without losing the others), then prints one
table with each Atlas median beside the reference measured in the same run, its ratio and
the goal from the issues. A full run rewrites ``docs/performance.md`` and
``docs/performance-throughput.png`` (throughput by payload size, from bench_proxy). Every
benchmark's own text report and JSON go to ``loadtest/reports/bench-DATE/``.
Usage::

    .venv/bin/python -m loadtest bench [--quick] [--only NAME ...] [--install-deps]
                                       [--doc PATH | --no-doc]

``--quick`` runs every benchmark's seconds-long smoke mode and writes its document into
the reports directory, never over docs/performance.md (unless ``--doc`` says so).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import REPO
from loadtest.harness import cli
from loadtest.harness.children import child_env, die_with_parent, module_argv, wait_exit
from loadtest.harness.suite_doc import PLOT_NAME, plot, render, throughput_by_size
from loadtest.harness.suite_table import goal_counts, lines_of, text_table

HERE = REPO / "loadtest"
"""``loadtest/``, where the benchmark modules live (each runs as ``python -m loadtest.NAME``)."""
STOP_GRACE = 60.0
"""Seconds a benchmark gets to stop its own children after SIGTERM."""


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    script: str
    suite_args: tuple[str, ...]
    """Arguments of a full suite run (fewer repetitions where that keeps the suite short)."""
    system_tools: bool
    """Takes ``--install-deps`` (needs Debian packages such as nginx, wrk, curl, hey)."""
    budget_s: float
    """Longest a full run may take before it is stopped."""


BENCHMARKS = (
    Benchmark("protocol", "bench_protocol.py", (), False, 180),
    Benchmark("edge", "bench_edge.py", (), True, 400),
    Benchmark("sdk", "bench_sdk.py", ("--reps", "3"), True, 400),
    Benchmark("proxy", "bench_proxy.py", (), True, 400),
    Benchmark("torrent", "bench_torrent.py", (), False, 400),
)
NAMES = tuple(b.name for b in BENCHMARKS)


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
    module = f"loadtest.{bench.script.removesuffix('.py')}"
    argv = module_argv(module, "--json", str(report_path))
    argv += ["--quick"] if quick else list(bench.suite_args)
    if install and bench.system_tools:
        argv.append("--install-deps")
    budget = bench.budget_s / 2 if quick else bench.budget_s
    started = time.monotonic()
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd=REPO,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (it only calls prctl)
        )
        ended = wait_exit(popen, budget)
        problem = ""
        if ended is None:  # our own child, by its PID: it stops its servers on SIGTERM
            popen.send_signal(signal.SIGTERM)
            if wait_exit(popen, STOP_GRACE) is None:
                popen.kill()
            problem = f"stopped after its budget of {budget:.0f} s"
        code = popen.wait()
    seconds = time.monotonic() - started
    if not problem and code != 0:
        problem = f"exited {code}"
    report = read_report(report_path)
    if report is None and not problem:
        problem = "wrote no report"
    return BenchRun(bench, seconds, problem, report, log)


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


DOC = REPO / "docs" / "performance.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="every benchmark's smoke mode")
    cli.add_only(parser, NAMES)
    cli.add_install_deps(parser, "nginx, wrk, curl and hey")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--doc", type=Path, metavar="PATH", help=f"document to write ({DOC})")
    where.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument("--reports", type=Path, metavar="DIR", help="where the reports go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    now = datetime.now(UTC)
    outdir = args.reports or HERE / "reports" / f"bench-{now:%Y%m%d-%H%M%S}"
    outdir.mkdir(parents=True, exist_ok=True)
    doc = None if args.no_doc else args.doc or (outdir / DOC.name if args.quick else DOC)
    chosen = [b for b in BENCHMARKS if b.name in (args.only or NAMES)]
    load_start, started = os.getloadavg()[0], time.monotonic()
    runs: list[BenchRun] = []
    for bench in chosen:
        print(f"{bench.name}: running {bench.script} ...", flush=True)
        run = run_benchmark(bench, outdir, quick=args.quick, install=args.install_deps)
        runs.append(run)
        print(f"{bench.name}: {run.seconds:.0f} s, {run.problem or 'ok'} ({run.log})", flush=True)
    wall = time.monotonic() - started
    lines = [line for run in runs if run.report for line in lines_of(run.report)]
    met, missed = goal_counts(lines)
    print()
    print(f"Atlas benchmark suite, {now:%Y-%m-%d %H:%M} UTC, {wall / 60:.1f} min")
    print("medians; ratio = Atlas / reference, measured in the same run; n = repetitions")
    print()
    print("\n".join(text_table(lines)))
    print()
    print(f"goals: {met} met, {missed} missed")
    problems = [f"{run.benchmark.name}: {run.problem}" for run in runs if run.problem]
    for problem in problems:
        print(f"PROBLEM {problem} (see {outdir})")
    if doc is not None:
        sizes = throughput_by_size(runs)
        if sizes is not None:
            plot(sizes, doc.with_name(PLOT_NAME), f"Throughput by payload size, {now:%Y-%m-%d}")
        given = sys.argv[1:] if argv is None else list(argv)
        command = shlex.join([".venv/bin/python", "-m", "loadtest", "bench", *given])
        doc.write_text(
            render(
                runs,
                lines,
                started=f"{now:%Y-%m-%d %H:%M}",
                wall_s=wall,
                command=command,
                load=(load_start, os.getloadavg()[0]),
                plot_written=sizes is not None,
            ),
            encoding="utf-8",
        )
        print(f"wrote {doc}" + (f" and {doc.with_name(PLOT_NAME)}" if sizes else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the running benchmark
    raise SystemExit(main())
