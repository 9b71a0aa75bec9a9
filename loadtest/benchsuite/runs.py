"""Running each benchmark script as its own process, with its ``--json`` report kept."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import REPO
from loadtest.benchlib.processes import child_env, die_with_parent, module_argv, wait_exit

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
