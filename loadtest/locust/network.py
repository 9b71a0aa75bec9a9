"""The network under test: the test origin and ``atlas up`` (a ledger with faucet, the
edges, the proxy and its mobile API, in a temporary data dir), children of this process
started and stopped by PID with the harness's runner (:class:`Processes`); the
memory and CPU of ``atlas up``'s servers, from /proc; and the headless locust runs against
it, each its own process (locust monkeypatches whatever imports it with gevent), with what
they leave: locust's CSV rows and failures, and the per-scenario JSON of
:mod:`loadtest.locust.atlas_user`."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from loadtest import REPO
from loadtest.harness.children import ATLAS, BenchError, Processes, run_logged
from loadtest.harness.procfs import (
    child_cpu_seconds,
    children_of,
    cpu_seconds,
    proc_status,
    reset_peak_rss,
)

LOCUST = Path(sys.executable).with_name("locust")
CONF = REPO / "loadtest" / "locust.conf"
SCENARIOS = Path(__file__).with_name("scenarios.py")
SWEEP_FILE = Path(__file__).with_name("sweep_users.py")
EDGES = 3
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0


class Sample(NamedTuple):
    rss_mib: float
    peak_mib: float
    """VmHWM: the peak since the last :meth:`Network.reset_peaks`."""
    cpu_s: float


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


def kinds_text(kinds: dict[str, int]) -> str:
    """Failures by kind, ``shed 12, timeout 1``, or ``-``."""
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "-"


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


@dataclass
class Network:
    roles: dict[str, int]
    """The servers ``atlas up`` started, by role (ledger, edge1.., proxy): their PIDs."""
    env: dict[str, str]
    """Where the locust users find the network (:func:`.atlas_user.load_targets`)."""

    def samples(self) -> dict[str, Sample]:
        """RSS, peak RSS and CPU seconds of each server still running."""
        out = {}
        for role, pid in self.roles.items():
            with contextlib.suppress(OSError, ValueError):
                status = proc_status(pid)
                out[role] = Sample(status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024,
                                   cpu_seconds(pid))  # fmt: skip
        return out

    def reset_peaks(self) -> None:
        """VmHWM back to the current RSS, so that a peak is per run."""
        for pid in self.roles.values():
            reset_peak_rss(pid)

    def locust(
        self, prefix: Path, locustfile: Path, classes: Sequence[str], users: int,
        spawn_rate: float, seconds: int, extra: Sequence[str] = (),
    ) -> LocustRun:  # fmt: skip
        """One headless locust process against this network (locust.conf's settings); its
        CSV, HTML, log and per-scenario JSON at ``prefix``."""
        scenarios_json, log = Path(f"{prefix}_scenarios.json"), Path(f"{prefix}_locust.log")
        argv = [
            str(LOCUST), "--config", str(CONF), *extra, "-f", str(locustfile), "-u", str(users),
            "-r", str(spawn_rate), "-t", f"{seconds}s", "--csv", str(prefix), "--html",
            f"{prefix}.html", *classes,
        ]  # fmt: skip
        started, reaped = time.monotonic(), child_cpu_seconds()
        env = {**self.env, "ATLAS_LT_SCENARIOS_JSON": str(scenarios_json)}
        returncode, overran = run_logged(argv, "locust", log, seconds + 120, 20, env)
        if overran:
            print(f"locust overran its time by 120 s: stopped (see {log})")
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


@contextlib.contextmanager
def network(workdir: Path, logs: Path, stops: dict[str, Any]) -> Iterator[Network]:
    """Origin and ``atlas up`` as children, their logs in ``logs``; stopped on the way out,
    ``atlas up`` by SIGTERM (it stops the proxy, the edges, which redeem what they earned,
    then the ledger), timed."""
    for tool in (LOCUST, Path(ATLAS)):
        if not tool.exists():
            raise BenchError(f"{tool} missing: run make venv (and use .venv/bin/python)")
    started, procs = time.monotonic(), Processes(logs)
    try:
        origin = procs.origin()
        up = procs.start("atlas-up", [ATLAS, "up", "--data-dir", str(workdir / "atlas-data"),
                                      "--edges", str(EDGES), "--proxy-port", "0",
                                      "--allow-private-origins"], ready_key=None,
                         timeout=READY_TIMEOUT)  # fmt: skip
        roles = roles_of(up.pid)
        stops["startup_s"] = round(time.monotonic() - started, 2)
        print(f"network up in {stops['startup_s']} s: "
              + ", ".join(f"{r}={p}" for r, p in roles.items()))  # fmt: skip
        yield Network(roles, {"ATLAS_UP_JSON": json.dumps(up.ready), "ATLAS_ORIGIN": origin.url})
    finally:
        stopping = time.monotonic()
        procs.close(STOP_TIMEOUT)  # atlas up first
        stops["atlas_up_stop_s"] = round(time.monotonic() - stopping, 2)


def roles_of(up_pid: int) -> dict[str, int]:
    """The processes ``atlas up`` started, by role: ledger, edge1.., proxy (from /proc)."""
    roles: dict[str, int] = {}
    for pid in children_of(up_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            if "edge" in argv and "serve" in argv and "--data-dir" in argv:
                roles[Path(argv[argv.index("--data-dir") + 1]).name] = pid
            elif "proxy" in argv or "ledger" in argv:
                roles["proxy" if "proxy" in argv else "ledger"] = pid
    return dict(sorted(roles.items()))
