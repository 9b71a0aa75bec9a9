"""``python -m loadtest locust|sweep`` (``make loadtest``): locust against a whole local
Atlas network, its reports in ``loadtest/reports/<mode>-<time>/`` (loadtest/README.md).
Exit status 1 when a request failed or a scenario sent nothing (a sweep, where overload is
the point: 0 unless a run broke), 2 when the test could not run. One run puts the four
scenarios together, then prints per scenario its requests, failures by kind and latencies,
and per server its memory and CPU."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import REPO
from loadtest.harness.children import BenchError, workspace
from loadtest.harness.machine import run_facts
from loadtest.harness.rows import table
from loadtest.locust.market_run import run_market
from loadtest.locust.network import EDGES, SCENARIOS, Network, kinds_text, network, seconds_of
from loadtest.locust.sweep import run_sweep, sweep_markdown

CLASSES = {"browser": "BrowserUser", "mobile": "MobileUser", "paying": "PayingEdgeUser",
           "operator": "OperatorUser"}  # fmt: skip
"""Each scenario and its locust user class (``loadtest/locust/scenarios.py``)."""
SMOKE_THINK = {"ATLAS_LT_THINK_BROWSER": "0.2,0.5", "ATLAS_LT_THINK_MOBILE": "0.2,0.5",
               "ATLAS_LT_THINK_PAYING": "0.05,0.2", "ATLAS_LT_LARGE_P": "0.3"}  # fmt: skip
"""``--smoke``: one user per scenario with short think times, so each runs many times."""
MIB_COLUMNS = ("rss_before_mib", "rss_after_mib", "rss_peak_mib", "rss_cooled_mib")


def run_once(args: argparse.Namespace, net: Network, out: Path) -> dict[str, Any]:
    extra = []
    if args.smoke:
        net.env.update(SMOKE_THINK)
        config = out / "smoke_users.json"  # a file: configargparse mangles a JSON array
        users = [{"user_class_name": c, "fixed_count": 1} for c in CLASSES.values()]
        config.write_text(json.dumps(users))
        extra = ["--config-users", str(config)]
    before = net.samples()
    net.reset_peaks()
    run = net.locust(out / "locust", SCENARIOS, list(CLASSES.values()), args.users,
                     args.spawn_rate, args.run_time, extra)  # fmt: skip
    after = net.samples()
    time.sleep(args.cooldown)
    cooled = net.samples()
    processes = {
        role: {
            "rss_before_mib": before[role].rss_mib, "rss_after_mib": after[role].rss_mib,
            "rss_peak_mib": after[role].peak_mib,
            "rss_cooled_mib": cooled[role].rss_mib if role in cooled else None,
            "cpu_s": after[role].cpu_s - before[role].cpu_s,
        }
        for role in net.roles
        if role in before and role in after
    }  # fmt: skip
    return {
        "locust_exit": run.returncode, "locust_wall_s": round(run.wall_s, 1),
        "scenarios": run.scenarios, "rows": run.rows, "failures": run.failures,
        "processes": processes, "cooldown_s": args.cooldown,
    }  # fmt: skip


def print_run(result: dict[str, Any]) -> None:
    header = ["scenario", "requests", "fails", "req/s", "p50 ms", "p95 ms", "max ms"]
    cells = []
    for name, s in result["scenarios"].items():
        counts = [name, str(s["requests"]), str(s["failures"]), f"{s['rps']:.1f}"]
        times = [f"{s[k]:.0f}" for k in ("p50_ms", "p95_ms", "max_ms")]
        cells.append([*counts, *times, kinds_text(s["failure_kinds"])])
    print("", *table([*header, "failures by kind"], cells, left=(0, 7)), sep="\n")
    for failure in result["failures"][:10]:
        print(f"  failure x{failure.get('Occurrences')}: {failure.get('Name')}: "
              f"{failure.get('Error', '')[:160]}")  # fmt: skip
    cells = []
    for role, p in result["processes"].items():
        mib = ["-" if p[k] is None else f"{p[k]:.0f}" for k in MIB_COLUMNS]
        cells.append([role, *mib, f"{p['cpu_s']:.1f}"])
    header = ["process", "RSS before MiB", "after", "peak", "cooled", "CPU s"]
    print("", *table(header, cells, left=(0,)), sep="\n")


COOLDOWN = {"run": 5.0, "smoke": 2.0, "sweep": 20.0}
"""Idle seconds before the last RSS reading, by mode (``--cooldown``)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest locust", description="locust against "
                                "a whole local Atlas network (loadtest/README.md)")  # fmt: skip
    p.add_argument("-u", "--users", type=int, default=20)
    p.add_argument("-r", "--spawn-rate", type=float, default=5.0)
    p.add_argument("-t", "--run-time", type=seconds_of, help="60s, 2m, ... (market: 30s)")
    p.add_argument("--smoke", action="store_true", help="4 users (one per scenario) for 8 s")
    p.add_argument("--sweep", action="store_true", help="saturation sweep of an edge and the proxy")
    p.add_argument("--sweep-users", default="5,10,20,40,80,160")
    p.add_argument("--sweep-time", type=seconds_of, default="15s", help="length of a sweep step")
    p.add_argument("--sweep-reps", type=int, default=2)
    p.add_argument("--sweep-targets", default="edge,proxy")
    p.add_argument("--cooldown", type=float, help="idle seconds before the last RSS reading")
    p.add_argument("--reports", type=Path, help="default loadtest/reports/<mode>-<time>")
    p.add_argument("--scenario", choices=("all", "market"), default="all",
                   help="market: bidders and free users on one market edge")  # fmt: skip
    args = p.parse_args(argv)
    args.mode = "sweep" if args.sweep else "smoke" if args.smoke else "run"
    if args.run_time is None:
        args.run_time = 30 if args.scenario == "market" else 60
    if args.smoke:
        args.users, args.spawn_rate, args.run_time = len(CLASSES), len(CLASSES), 8
    if args.cooldown is None:
        args.cooldown = COOLDOWN[args.mode]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return load_test(parse_args(argv))
    except BenchError as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        return 2


def load_test(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.reports or REPO / "loadtest" / "reports" / f"{args.mode}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    info = {**run_facts(), "mode": args.mode, "users": args.users, "edges": EDGES,
            "spawn_rate": args.spawn_rate, "run_time_s": args.run_time,
            "cooldown_s": args.cooldown, "argv": sys.argv[1:]}  # fmt: skip
    print(f"atlas load test ({args.mode}), reports in {out}")
    if args.scenario == "market":
        return run_market(args.run_time, out)
    stops: dict[str, Any] = {}
    result: dict[str, Any] = {}
    with workspace("atlas-loadtest-") as workdir:
        try:
            with network(workdir, out, stops) as net:
                result = run_sweep(args, net, out) if args.sweep else run_once(args, net, out)
        finally:
            result.update(machine=info, stops=stops)
            (out / "summary.json").write_text(json.dumps(result, indent=1, default=str), "utf-8")
    if args.sweep:
        text = sweep_markdown(result["summary"], args.cooldown)
        (out / "sweep.md").write_text(text + "\n", "utf-8")
        print(f"\n{text}")
    else:
        print_run(result)
    print(f"\nnetwork: up in {stops.get('startup_s')} s, stopped in "
          f"{stops.get('atlas_up_stop_s')} s (SIGTERM to atlas up; edges redeem)")  # fmt: skip
    print(f"reports: {out}")
    if args.sweep:
        return 0
    missing = [s for s in CLASSES if s not in result["scenarios"]]
    if missing:
        print(f"scenarios that sent nothing: {missing}")
    failed = sum(s["failures"] for s in result["scenarios"].values())
    return 1 if failed or missing or result["locust_exit"] not in (0, 1) else 0
