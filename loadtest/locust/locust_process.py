"""One headless locust run as a child process (locust monkeypatches whatever imports it
with gevent), and what it leaves: locust's CSV rows and failures, and the per-scenario JSON
of :mod:`loadtest.locust.scenario_stats`."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import processes
from loadtest import REPO
from loadtest.harness.children import BenchError, child_env
from loadtest.harness.procfs import child_cpu_seconds

LOCUST = Path(sys.executable).with_name("locust")
CONF = REPO / "loadtest" / "locust.conf"
SCENARIOS = Path(__file__).with_name("scenarios.py")
SWEEP_FILE = Path(__file__).with_name("sweep_users.py")


def seconds_of(run_time: str) -> int:
    """locust's ``-t`` syntax (``90``, ``30s``, ``2m``, ``1h30m``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", run_time.replace(" ", ""))
    if not run_time.strip() or parts is None:
        raise argparse.ArgumentTypeError(f"run time {run_time!r}: use e.g. 30s, 2m, 1h30m")
    hours, minutes, seconds = (int(n or 0) for n in parts.groups())
    return 3600 * hours + 60 * minutes + seconds


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass
class LocustRun:
    prefix: Path
    returncode: int
    wall_s: float
    cpu_s: float
    """CPU seconds locust itself used (start-up included)."""
    rows: list[dict[str, str]]
    scenarios: dict[str, dict[str, Any]]
    failures: list[dict[str, str]]

    def row(self, name: str) -> dict[str, str]:
        return next((r for r in self.rows if r.get("Name") == name), {})

    def measured_window(self, users: int) -> tuple[float, float] | None:
        """From locust's stats history: first and last second with all ``users`` running."""
        stamps = [
            float(r["Timestamp"])
            for r in read_csv(Path(f"{self.prefix}_stats_history.csv"))
            if r.get("Name") == "Aggregated" and r.get("User Count") == str(users)
        ]
        return (stamps[0], stamps[-1]) if len(stamps) >= 2 else None


def run_locust(
    prefix: Path, locustfile: Path, classes: Sequence[str], users: int, spawn_rate: float,
    seconds: int, env: dict[str, str], extra: Sequence[str] = (),
) -> LocustRun:  # fmt: skip
    """One headless locust process (locust.conf's settings); its CSV, HTML, log and
    per-scenario JSON at ``prefix``."""
    scenarios_json = Path(f"{prefix}_scenarios.json")
    argv = [
        str(LOCUST), "--config", str(CONF), *extra, "-f", str(locustfile), "-u", str(users),
        "-r", str(spawn_rate), "-t", f"{seconds}s", "--csv", str(prefix), "--html",
        f"{prefix}.html", *classes,
    ]  # fmt: skip
    log = Path(f"{prefix}_locust.log")
    started = time.monotonic()
    reaped = child_cpu_seconds()
    locust = processes.spawn(argv, name="locust", cwd=REPO, log=log,
                             env={**child_env(), **env,
                                  "ATLAS_LT_SCENARIOS_JSON": str(scenarios_json)})  # fmt: skip
    try:
        returncode = locust.wait(seconds + 120)
    except subprocess.TimeoutExpired:
        print(f"locust (pid {locust.pid}) overran its time: stopping it")
        returncode = locust.stop(20)
    except BaseException:  # Ctrl-C: it runs in its own session, so stop it here
        locust.stop(20)
        raise
    wall = time.monotonic() - started
    cpu = child_cpu_seconds() - reaped  # locust is the only child reaped meanwhile
    scenarios: dict[str, dict[str, Any]] = {}
    if scenarios_json.exists():
        scenarios = json.loads(scenarios_json.read_text("utf-8"))["scenarios"]
    rows = read_csv(Path(f"{prefix}_stats.csv"))
    if not rows:
        tail = log.read_text("utf-8", "replace")[-3000:]
        raise BenchError(f"locust wrote no statistics (exit {returncode}); see {log}:\n{tail}")
    failures = read_csv(Path(f"{prefix}_failures.csv"))
    return LocustRun(prefix, returncode, wall, cpu, rows, scenarios, failures)


def kinds_text(kinds: dict[str, int]) -> str:
    """Failures by kind, ``shed 12, timeout 1``, or ``-``."""
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "-"
