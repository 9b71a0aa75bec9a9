"""Load test of a whole local Atlas network with locust, run by ``make loadtest``.

Everything is a child process of this script on 127.0.0.1, stopped by its PID:
the test origin (``tests/origin_server.py``), ``atlas up`` (a ledger with faucet,
edges and the proxy with its mobile API, in a temporary data dir) and locust,
headless, as its own process (locust monkeypatches the process it runs in with
gevent, so it is never imported here). Usage::

    .venv/bin/python loadtest/run_loadtest.py                      # 20 users, 60 s
    .venv/bin/python loadtest/run_loadtest.py -u 40 -r 10 -t 2m
    .venv/bin/python loadtest/run_loadtest.py --smoke              # 4 users, a few seconds
    .venv/bin/python loadtest/run_loadtest.py --sweep              # saturation sweep

A run writes locust's HTML report and CSV files, the per-scenario statistics and a
``summary.json`` into ``loadtest/reports/<mode>-<time>/`` (or ``--reports DIR``), then
prints per scenario: requests, failures (by kind), requests/s, p50/p95; per process:
RSS before, right after and after a cool-down, peak RSS and CPU seconds; the load
average; origin hits; how long the network took to stop; and what the edges earned
and redeemed. The exit status is 1 when any request failed (0 for ``--sweep``, where
overload is the point, unless a run broke).

``--sweep`` steps closed-loop users (``locustfile_sweep.py``, no think time) through
``--sweep-users`` against one edge (paid chunks) and against the proxy (small objects),
``--sweep-reps`` times, and reports the medians: requests/s, p50/p95, errors by kind
(``shed`` = 429/503 with Retry-After, ``timeout``, ...), CPU of the process under
test, the 1-minute load average, and where p95 doubles against the lightest step.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
LOCUST = BIN / "locust"
ATLAS = BIN / "atlas"
ORIGIN = ROOT / "tests" / "origin_server.py"
LOCUSTFILE = HERE / "locustfile.py"
SWEEPFILE = HERE / "locustfile_sweep.py"
CONF = HERE / "locust.conf"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0
SCENARIOS = ("browser", "mobile", "paying", "operator")
CLASSES = ("BrowserUser", "MobileUser", "PayingEdgeUser", "OperatorUser")
SWEEP_TARGETS = {
    "edge": ("EdgeSweepUser", "edge-sweep: chunk", "edge1"),
    "proxy": ("ProxySweepUser", "proxy-sweep: object", "proxy"),
}
"""Sweep target: locust class, the request row measured, the process under test."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LoadTestError(Exception):
    pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this script dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Child:
    """A process this script started; stopped by its PID, never by name."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, wait, SIGKILL if needed; the seconds it took to exit."""
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return time.monotonic() - started


def start_child(name: str, argv: Sequence[str], logs: Path,
                env: dict[str, str] | None = None) -> Child:  # fmt: skip
    """Start ``argv`` and wait for its first JSON object line on stdout (its ready line)."""
    log = logs / f"{name}.log"
    with log.open("wb") as err:
        popen = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
            env={**os.environ, **(env or {})},
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls prctl)
        )  # fmt: skip
    child = Child(name, popen, log)
    assert popen.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    buffered = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([popen.stdout], [], [], 0.5)
        if not readable:
            if popen.poll() is not None:
                break
            continue
        data = os.read(popen.stdout.fileno(), 65536)
        if not data:
            break
        buffered += data
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                ready = json.loads(line)
                if isinstance(ready, dict):
                    child.ready = ready
                    return child
    child.stop(10)
    tail = log.read_text("utf-8", "replace")[-2000:]
    raise LoadTestError(f"{name} did not print its ready line (see {log}):\n{tail}")


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return sorted(out)


def cmdline(pid: int) -> bytes:
    """The process's argv as /proc shows it; b"" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def roles_of(up_pid: int) -> dict[str, int]:
    """The processes ``atlas up`` started, by role: ledger, edge1.., proxy."""
    roles: dict[str, int] = {}
    for pid in children_of(up_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            words = [a.decode("utf-8", "replace") for a in argv]
            if "edge" in words and "serve" in words and "--data-dir" in words:
                roles[Path(words[words.index("--data-dir") + 1]).name] = pid
            elif "proxy" in words:
                roles["proxy"] = pid
            elif "ledger" in words:
                roles["ledger"] = pid
    return dict(sorted(roles.items()))


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    hwm_kib: int
    cpu_s: float


def sample(pid: int) -> ProcSample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    cpu = (int(stat[11]) + int(stat[12])) / CLK_TCK  # utime, stime (fields 14, 15)
    return ProcSample(values.get("VmRSS", 0), values.get("VmHWM", 0), cpu)


def samples(roles: dict[str, int]) -> dict[str, ProcSample]:
    out = {}
    for role, pid in roles.items():
        s = sample(pid)
        if s is not None:
            out[role] = s
    return out


def reset_peak_rss(roles: dict[str, int]) -> None:
    """VmHWM back to the current RSS (Linux ``clear_refs`` 5), so a peak is per run."""
    for pid in roles.values():
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")


class CpuSampler:
    """Polls the CPU seconds of each process every 0.5 s in a thread, so the CPU share
    can be taken over exactly the window locust measured (not its start and stop)."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.series: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            now = time.time()
            point = {r: s.cpu_s for r, s in samples(self.roles).items()}
            point.update({f"{r}:runq": runqueue_wait_s(pid) for r, pid in self.roles.items()})
            self.series.append((now, point))
            if self._stop.wait(0.5):
                return

    def percent(self, start: float, end: float) -> dict[str, float]:
        """Per process, between two wall-clock times (nearest samples): CPU % (``role``) and
        % of the time its threads waited for a CPU while runnable (``role:runq``)."""
        inside = [(t, cpu) for t, cpu in self.series if start <= t <= end]
        if len(inside) < 2:
            return {}
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return {r: round(100 * (c1[r] - c0[r]) / (t1 - t0), 1) for r in c0 if r in c1}


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat):
    high when other processes on the machine take the cores."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(task.read_text().split()[1])
    return total / 1e9


def measured_window(prefix: Path, users: int) -> tuple[float, float] | None:
    """From locust's stats history: first and last second with all ``users`` running."""
    rows = read_csv(prefix.with_name(prefix.name + "_stats_history.csv"))
    stamps = [
        float(r["Timestamp"])
        for r in rows
        if r.get("Name") == "Aggregated" and r.get("User Count") == str(users)
    ]
    return (stamps[0], stamps[-1]) if len(stamps) >= 2 else None


def loadavg() -> tuple[float, float, float]:
    parts = Path("/proc/loadavg").read_text().split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback URLs we started
        return json.loads(resp.read())


# --- locust ------------------------------------------------------------------------------------


def seconds_of(run_time: str) -> float:
    """locust's ``-t`` syntax (``90``, ``30s``, ``2m``, ``1h30m``) in seconds."""
    if re.fullmatch(r"\d+", run_time):
        return float(run_time)
    parts = re.findall(r"(\d+)\s*([hms])", run_time)
    if not parts or "".join(n + u for n, u in parts) != run_time.replace(" ", ""):
        raise argparse.ArgumentTypeError(f"run time {run_time!r}: use e.g. 30s, 2m, 1h30m")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts))


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

    def row(self, name: str) -> dict[str, str] | None:
        return next((r for r in self.rows if r.get("Name") == name), None)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_locust(
    prefix: Path, locustfile: Path, classes: Sequence[str], users: int, spawn_rate: float,
    run_time: str, env: dict[str, str], extra: Sequence[str] = (),
) -> LocustRun:  # fmt: skip
    """One headless locust process; its CSV, HTML and per-scenario JSON under ``prefix``."""
    scenarios_json = prefix.with_name(prefix.name + "_scenarios.json")
    argv = [
        str(LOCUST), "--config", str(CONF), *extra, "-f", str(locustfile), "--headless",
        "-u", str(users), "-r", str(spawn_rate), "-t", run_time,
        "--csv", str(prefix), "--html", str(prefix.with_name(prefix.name + ".html")),
        "--only-summary", "--stop-timeout", "10", *classes,
    ]  # fmt: skip
    log = prefix.with_name(prefix.name + "_locust.log")
    started = time.monotonic()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls prctl)
            env={**os.environ, **env, "ATLAS_LT_SCENARIOS_JSON": str(scenarios_json),
                 "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            returncode = popen.wait(seconds_of(run_time) + 120)
        except subprocess.TimeoutExpired:
            print(f"locust (pid {popen.pid}) overran its time: stopping it")
            popen.send_signal(signal.SIGTERM)
            try:
                returncode = popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
                returncode = popen.wait()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust is the only child reaped
    cpu = usage.ru_utime + usage.ru_stime - reaped.ru_utime - reaped.ru_stime
    scenarios: dict[str, dict[str, Any]] = {}
    if scenarios_json.exists():
        scenarios = json.loads(scenarios_json.read_text("utf-8"))["scenarios"]
    rows = read_csv(prefix.with_name(prefix.name + "_stats.csv"))
    if not rows:
        tail = log.read_text("utf-8", "replace")[-3000:]
        raise LoadTestError(f"locust wrote no statistics (exit {returncode}); see {log}:\n{tail}")
    failures = read_csv(prefix.with_name(prefix.name + "_failures.csv"))
    return LocustRun(prefix, returncode, wall, cpu, rows, scenarios, failures)


# --- the network -------------------------------------------------------------------------------


@dataclass
class Network:
    origin: Child
    up: Child
    roles: dict[str, int]
    up_json: Path
    data_dir: Path

    @property
    def origin_url(self) -> str:
        return str(self.origin.ready["listening"])

    @property
    def env(self) -> dict[str, str]:
        return {"ATLAS_UP_JSON": str(self.up_json), "ATLAS_ORIGIN": self.origin_url}


@contextlib.contextmanager
def network(workdir: Path, edges: int, logs: Path, stops: dict[str, Any]) -> Iterator[Network]:
    """Origin and ``atlas up`` as children; stopped (by PID) on the way out, timed."""
    started = time.monotonic()
    origin = start_child("origin", [sys.executable, str(ORIGIN), "--port", "0"], logs)
    up: Child | None = None
    try:
        data_dir = workdir / "atlas-data"
        up = start_child(
            "atlas-up",
            [str(ATLAS), "up", "--data-dir", str(data_dir), "--edges", str(edges),
             "--proxy-port", "0", "--allow-private-origins"],
            logs,
        )  # fmt: skip
        up_json = workdir / "up.json"
        up_json.write_text(json.dumps(up.ready) + "\n", "utf-8")
        roles = roles_of(up.pid)
        stops["startup_s"] = round(time.monotonic() - started, 2)
        pids = ", ".join(f"{r}={p}" for r, p in roles.items())
        print(f"network up in {stops['startup_s']} s: {pids}")
        yield Network(origin, up, roles, up_json, data_dir)
    finally:
        if up is not None:
            started_by_up = {role: (pid, cmdline(pid)) for role, pid in roles_of(up.pid).items()}
            with ExitTimes(started_by_up) as exits:
                stops["atlas_up_stop_s"] = round(up.stop(), 2)
            stops["exit_after_s"] = exits.times
            for role, (pid, argv) in started_by_up.items():  # atlas up stopped them, or:
                if argv and cmdline(pid) == argv:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        stops.setdefault("killed", []).append(role)
        origin.stop(10)


class ExitTimes:
    """While ``atlas up`` stops: when each of its children exited (s after the start)."""

    def __init__(self, procs: dict[str, tuple[int, bytes]]) -> None:
        self.procs = procs
        self.times: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ExitTimes:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for role, (pid, argv) in self.procs.items():
                if role not in self.times and cmdline(pid) != argv:
                    self.times[role] = round(time.monotonic() - self._started, 2)
            if self._stop.wait(0.05):
                return


def earnings(data_dir: Path) -> dict[str, dict[str, str]]:
    """``atlas edge earnings`` of every edge (after the network stopped: edges redeem on
    SIGTERM, so ``unredeemed`` should be 0)."""
    out = {}
    for edge_dir in sorted(data_dir.glob("edge*")):
        result = subprocess.run(
            [str(ATLAS), "edge", "earnings", "--data-dir", str(edge_dir), "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            report = json.loads(result.stdout)
            out[edge_dir.name] = {
                "paid": report["paid"], "redeemed": report["redeemed"],
                "unredeemed": report["unredeemed"], "channels": str(len(report["channels"])),
            }  # fmt: skip
        else:
            out[edge_dir.name] = {"error": result.stderr.strip()[-300:]}
    return out


# --- one run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=False).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           text=True, capture_output=True, check=False).stdout  # fmt: skip
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit + ("+dirty" if dirty.strip() else ""),
        "loadavg_start": loadavg(),
    }


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def run_once(args: argparse.Namespace, net: Network, out: Path) -> dict[str, Any]:
    env = dict(net.env)
    extra: list[str] = []
    if args.smoke:  # one user of each scenario, short think times, so each runs many times
        env.update({"ATLAS_LT_THINK_BROWSER": "0.2,0.5", "ATLAS_LT_THINK_MOBILE": "0.2,0.5",
                    "ATLAS_LT_THINK_PAYING": "0.05,0.2", "ATLAS_LT_LARGE_P": "0.3"})  # fmt: skip
        config = out / "smoke_users.json"  # a file: configargparse mangles a JSON array
        config.write_text(json.dumps([{"user_class_name": c, "fixed_count": 1} for c in CLASSES]))
        extra = ["--config-users", str(config)]
    before = samples(net.roles)
    load_before = loadavg()
    reset_peak_rss(net.roles)
    run = run_locust(out / "locust", LOCUSTFILE, CLASSES, args.users, args.spawn_rate,
                     args.run_time, env, extra)  # fmt: skip
    after = samples(net.roles)
    load_after = loadavg()
    time.sleep(args.cooldown)
    cooled = samples(net.roles)
    hits: dict[str, int] = {}
    sent: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        hits = get_json(f"{net.origin_url}/hits")
        sent = get_json(f"{net.origin_url}/sent")
    processes = {
        role: {
            "rss_before_mib": before[role].rss_kib / 1024,
            "rss_after_mib": after[role].rss_kib / 1024,
            "rss_peak_mib": after[role].hwm_kib / 1024,
            "rss_cooled_mib": cooled[role].rss_kib / 1024 if role in cooled else None,
            "cpu_s": after[role].cpu_s - before[role].cpu_s,
        }
        for role in net.roles
        if role in before and role in after
    }
    return {
        "locust_exit": run.returncode,
        "locust_wall_s": round(run.wall_s, 1),
        "scenarios": run.scenarios,
        "rows": run.rows,
        "failures": run.failures,
        "processes": processes,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "origin_hits": hits,
        "origin_sent_bytes": sent,
        "cooldown_s": args.cooldown,
    }


def print_run(result: dict[str, Any]) -> None:
    print()
    print(f"{'scenario':<10} {'requests':>8} {'fails':>6} {'req/s':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'max ms':>7}  failures by kind")  # fmt: skip
    for name, s in result["scenarios"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in s["failure_kinds"].items()) or "-"
        print(f"{name:<10} {s['requests']:>8} {s['failures']:>6} {s['rps']:>7.1f} "
              f"{s['p50_ms']:>7.0f} {s['p95_ms']:>7.0f} {s['max_ms']:>7.0f}  {kinds}")  # fmt: skip
    for failure in result["failures"][:10]:
        print(f"  failure x{failure.get('Occurrences')}: {failure.get('Name')}: "
              f"{failure.get('Error', '')[:160]}")  # fmt: skip
    print()
    print(f"{'process':<8} {'RSS before':>10} {'after':>6} {'peak':>6} {'cooled':>7} "
          f"{'CPU s':>6}   (MiB)")  # fmt: skip
    for role, p in result["processes"].items():
        cooled = "-" if p["rss_cooled_mib"] is None else f"{p['rss_cooled_mib']:.0f}"
        print(f"{role:<8} {p['rss_before_mib']:>10.0f} {p['rss_after_mib']:>6.0f} "
              f"{p['rss_peak_mib']:>6.0f} {cooled:>7} {p['cpu_s']:>6.1f}")  # fmt: skip
    hits = result["origin_hits"]
    if hits:
        video = hits.get("/site/video.bin", 0)
        video_mib = result.get("origin_sent_bytes", {}).get("/site/video.bin", 0) / 2**20
        ranges = result["scenarios"].get("mobile", {}).get("requests", 0)
        print(f"origin: {sum(hits.values())} requests in all; /site/video.bin (20 MiB) asked "
              f"{video} times, {video_mib:.1f} MiB sent, for {ranges} mobile Range "
              "requests")  # fmt: skip
    la, lb = result["loadavg_before"], result["loadavg_after"]
    print(f"load average before {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, "
          f"after {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}")  # fmt: skip


# --- the sweep ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def sweep_step(args: argparse.Namespace, net: Network, out: Path, target: str, users: int,
               rep: int) -> dict[str, Any]:  # fmt: skip
    cls, row_name, role = SWEEP_TARGETS[target]
    load = loadavg()
    reset_peak_rss(net.roles)
    prefix = out / f"{target}_u{users:03d}_rep{rep}"
    with CpuSampler(net.roles) as cpu_sampler:
        run = run_locust(prefix, SWEEPFILE, [cls], users, users, args.sweep_time, net.env,
                         ["--reset-stats"])  # fmt: skip
    after = samples(net.roles)
    window = measured_window(prefix, users)
    cpu = cpu_sampler.percent(*window) if window else {}
    row = run.row(row_name) or {}
    requests = int(row.get("Request Count", 0) or 0)
    failures = int(row.get("Failure Count", 0) or 0)
    scenario = run.scenarios.get(row_name.split(":")[0], {})
    step = {
        "target": target, "users": users, "rep": rep,
        "requests": requests, "failures": failures,
        "error_pct": 100 * failures / requests if requests else 0.0,
        "failure_kinds": scenario.get("failure_kinds", {}),
        "statuses": scenario.get("statuses", {}),
        "rps": float(row.get("Requests/s", 0) or 0),
        "p50_ms": float(row.get("50%", 0) or 0),
        "p95_ms": float(row.get("95%", 0) or 0),
        "p99_ms": float(row.get("99%", 0) or 0),
        "max_ms": float(row.get("Max Response Time", 0) or 0),
        "loadavg1": load[0],
        "cpu_pct": cpu,
        "target_cpu_pct": cpu.get(role, 0.0),
        "target_runq_pct": cpu.get(f"{role}:runq", 0.0),
        "locust_cpu_pct": round(100 * run.cpu_s / run.wall_s, 1),
        "target_cpu_ms_per_request": (
            round(10 * cpu[role] / float(row["Requests/s"]), 2)
            if role in cpu and float(row.get("Requests/s", 0) or 0) > 0
            else None
        ),
        "rss_mib": {r: s.rss_kib / 1024 for r, s in after.items()},
        "peak_rss_mib": {r: s.hwm_kib / 1024 for r, s in after.items()},
        "failure_samples": [f"{f.get('Occurrences')}x {f.get('Error', '')[:140]}"
                            for f in run.failures[:4]],
    }  # fmt: skip
    kinds = ", ".join(f"{k} {v}" for k, v in step["failure_kinds"].items()) or "-"
    print(f"  {target:<5} u={users:<3} rep {rep}: {step['rps']:7.1f} req/s  p50 "
          f"{step['p50_ms']:5.0f} ms  p95 {step['p95_ms']:5.0f} ms  errors {failures} ({kinds})  "
          f"{role} CPU {step['target_cpu_pct']:.0f}% (waiting {step['target_runq_pct']:.0f}%)  "
          f"locust {step['locust_cpu_pct']:.0f}%  load {load[0]:.2f}")  # fmt: skip
    return step


def summarize_sweep(steps: list[dict[str, Any]], users: Sequence[int], baseline: dict[str, Any],
                    cooled: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for target in SWEEP_TARGETS:
        role = SWEEP_TARGETS[target][2]
        table = []
        for u in users:
            mine = [s for s in steps if s["target"] == target and s["users"] == u]
            if not mine:
                continue
            kinds: dict[str, int] = {}
            for s in mine:
                for k, v in s["failure_kinds"].items():
                    kinds[k] = kinds.get(k, 0) + v
            table.append({
                "users": u, "reps": len(mine),
                "rps": median([s["rps"] for s in mine]),
                "p50_ms": median([s["p50_ms"] for s in mine]),
                "p95_ms": median([s["p95_ms"] for s in mine]),
                "p95_range": [min(s["p95_ms"] for s in mine), max(s["p95_ms"] for s in mine)],
                "error_pct": median([s["error_pct"] for s in mine]),
                "failures": sum(s["failures"] for s in mine),
                "requests": sum(s["requests"] for s in mine),
                "failure_kinds": kinds,
                "target_cpu_pct": median([s["target_cpu_pct"] for s in mine]),
                "target_runq_pct": median([s.get("target_runq_pct", 0.0) for s in mine]),
                "locust_cpu_pct": median([s["locust_cpu_pct"] for s in mine]),
                "target_cpu_ms_per_request": median(
                    [s["target_cpu_ms_per_request"] or 0.0 for s in mine]
                ),
                "loadavg1": median([s["loadavg1"] for s in mine]),
                "peak_rss_mib": max(s["peak_rss_mib"].get(role, 0) for s in mine),
            })  # fmt: skip
        if not table:
            continue
        base_p95 = table[0]["p95_ms"] or 1.0
        knee = next((r for r in table if r["p95_ms"] >= 2 * base_p95), None)
        peak = max(table, key=lambda r: r["rps"])
        out[target] = {
            "process": role,
            "table": table,
            "base_p95_ms": base_p95,
            "knee": knee,
            "peak": peak,
            "rss_baseline_mib": baseline.get(role),
            "rss_cooled_mib": cooled.get(role),
        }
    return out


def sweep_markdown(summary: dict[str, Any], info: dict[str, Any]) -> str:
    lines = []
    for target, s in summary.items():
        knee = s["knee"]
        where = f"{knee['users']} users, {knee['rps']:.0f} req/s" if knee else "no step"
        peak = s["peak"]
        lines.append(f"**{target}** (process `{s['process']}`): p95 doubles at {where}; "
                     f"peak {peak['rps']:.0f} req/s at {peak['users']} users")  # fmt: skip
        lines.append("")
        lines.append("| users | req/s | p50 ms | p95 ms (range) | errors % | errors by kind "
                     "(all reps) | CPU % of process (waiting for a CPU %) | CPU ms/req | "
                     "CPU % of locust | load avg 1m | peak RSS MiB |")  # fmt: skip
        lines.append("|---:|---:|---:|---|---:|---|---|---:|---:|---:|---:|")
        for r in s["table"]:
            kinds = ", ".join(f"{k} {v}" for k, v in r["failure_kinds"].items()) or "-"
            lines.append(
                f"| {r['users']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} "
                f"({r['p95_range'][0]:.0f}-{r['p95_range'][1]:.0f}) | {r['error_pct']:.2f} | "
                f"{kinds} | {r['target_cpu_pct']:.0f} ({r['target_runq_pct']:.0f}) | "
                f"{r['target_cpu_ms_per_request']:.2f} | "
                f"{r['locust_cpu_pct']:.0f} | "
                f"{r['loadavg1']:.2f} | "
                f"{r['peak_rss_mib']:.0f} |"
            )
        base, cooled = s["rss_baseline_mib"], s["rss_cooled_mib"]
        if base is not None and cooled is not None:
            lines.append("")
            idle = info["cooldown_s"]
            lines.append(f"RSS of `{s['process']}`: {base:.0f} MiB before the sweep, "
                         f"{cooled:.0f} MiB after it and {idle:.0f} s idle.")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def render_sweep(path: Path) -> str:
    """The sweep tables again from a ``summary.json`` (e.g. for the README)."""
    result = json.loads(path.read_text("utf-8"))
    steps = result["steps"]
    for step in steps:  # older reports lack the derived fields
        role = SWEEP_TARGETS[step["target"]][2]
        step.setdefault("target_runq_pct", step["cpu_pct"].get(f"{role}:runq", 0.0))
        if step.get("target_cpu_ms_per_request") is None and step["rps"] > 0:
            step["target_cpu_ms_per_request"] = 10 * step["target_cpu_pct"] / step["rps"]
    users = sorted({s["users"] for s in steps})
    summary = summarize_sweep(steps, users, result["rss_baseline_mib"], result["rss_cooled_mib"])
    return sweep_markdown(summary, result["machine"])


def run_sweep(args: argparse.Namespace, net: Network, out: Path) -> dict[str, Any]:
    users = [int(u) for u in args.sweep_users.split(",")]
    targets = [t for t in args.sweep_targets.split(",") if t]
    unknown = set(targets) - set(SWEEP_TARGETS)
    if unknown:
        raise LoadTestError(f"unknown sweep targets {sorted(unknown)}")
    # Warm-up (not measured): the proxy's channels, the edges' caches, the paid content.
    for target in targets:
        cls = SWEEP_TARGETS[target][0]
        run_locust(out / f"warmup_{target}", SWEEPFILE, [cls], 2, 2, "4s", net.env)
    time.sleep(args.settle)
    baseline = {r: s.rss_kib / 1024 for r, s in samples(net.roles).items()}
    steps = []
    for rep in range(1, args.sweep_reps + 1):
        for target in targets:
            for u in users:
                steps.append(sweep_step(args, net, out, target, u, rep))
                time.sleep(args.settle)
    time.sleep(args.cooldown)
    cooled = {r: s.rss_kib / 1024 for r, s in samples(net.roles).items()}
    summary = summarize_sweep(steps, users, baseline, cooled)
    return {"steps": steps, "summary": summary, "rss_baseline_mib": baseline,
            "rss_cooled_mib": cooled, "cooldown_s": args.cooldown}  # fmt: skip


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("-u", "--users", type=int, default=20)
    p.add_argument("-r", "--spawn-rate", type=float, default=5.0)
    p.add_argument("-t", "--run-time", default="60s", help="locust -t syntax: 60s, 2m, ...")
    p.add_argument("--edges", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="4 users (one per scenario) for 8 s")
    p.add_argument(
        "--sweep", action="store_true", help="saturation sweep of one edge and the proxy"
    )
    p.add_argument("--sweep-users", default="5,10,20,40,80,160")
    p.add_argument("--sweep-time", default="15s", help="length of each sweep step")
    p.add_argument("--sweep-reps", type=int, default=2)
    p.add_argument("--sweep-targets", default="edge,proxy")
    p.add_argument("--cooldown", type=float, default=None,
                   help="idle seconds before the last RSS reading (5; sweep 20)")  # fmt: skip
    p.add_argument("--settle", type=float, default=2.0, help="idle seconds between sweep steps")
    p.add_argument("--reports", type=Path, default=None,
                   help="report directory (default loadtest/reports/<mode>-<time>)")  # fmt: skip
    p.add_argument("--render", type=Path, metavar="SUMMARY_JSON",
                   help="print the sweep tables of an earlier --sweep's summary.json")  # fmt: skip
    args = p.parse_args(argv)
    if args.smoke:
        args.users, args.spawn_rate, args.run_time = len(CLASSES), len(CLASSES), "8s"
    if args.cooldown is None:
        args.cooldown = 20.0 if args.sweep else (2.0 if args.smoke else 5.0)
    seconds_of(args.run_time)
    seconds_of(args.sweep_time)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        print(render_sweep(args.render))
        return 0
    mode = "sweep" if args.sweep else "smoke" if args.smoke else "run"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.reports or HERE / "reports" / f"{mode}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    for tool in (LOCUST, ATLAS):
        if not tool.exists():
            raise LoadTestError(f"{tool} missing: run make venv (and use .venv/bin/python)")
    info = machine()
    info.update(mode=mode, users=args.users, spawn_rate=args.spawn_rate, run_time=args.run_time,
                edges=args.edges, cooldown_s=args.cooldown, argv=sys.argv[1:])  # fmt: skip
    print(f"atlas load test ({mode}), reports in {out}")
    workdir = Path(tempfile.mkdtemp(prefix="atlas-loadtest-"))
    stops: dict[str, Any] = {}
    result: dict[str, Any] = {}
    try:
        with network(workdir, args.edges, out, stops) as net:
            result = run_sweep(args, net, out) if args.sweep else run_once(args, net, out)
        result["earnings"] = earnings(workdir / "atlas-data")
    finally:
        result["machine"] = info
        result["stops"] = stops
        (out / "summary.json").write_text(json.dumps(result, indent=1, default=str), "utf-8")
        shutil.rmtree(workdir, ignore_errors=True)
    if args.sweep:
        text = sweep_markdown(result["summary"], info)
        (out / "sweep.md").write_text(text + "\n", "utf-8")
        print()
        print(text)
    else:
        print_run(result)
    print(f"\nnetwork: up in {stops.get('startup_s')} s, stopped in "
          f"{stops.get('atlas_up_stop_s')} s (SIGTERM to atlas up; edges redeem)"
          + (f"; SIGKILLed {stops['killed']}" if stops.get("killed") else ""))  # fmt: skip
    exits = stops.get("exit_after_s", {})
    if exits:
        print("  exited after SIGTERM (s): " + ", ".join(f"{r} {t}" for r, t in exits.items()))
    for edge, e in result.get("earnings", {}).items():
        print(f"  {edge}: {e}")
    print(f"reports: {out}")
    if args.sweep:
        return 0
    failed = sum(s["failures"] for s in result["scenarios"].values())
    missing = [s for s in SCENARIOS if s not in result["scenarios"]]
    if missing:
        print(f"scenarios that sent nothing: {missing}")
    return 1 if failed or missing or result["locust_exit"] not in (0, 1) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LoadTestError as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        sys.exit(2)
