"""``python -m loadtest locust|sweep`` (``make loadtest``): locust against a whole local
Atlas network, its reports in ``loadtest/reports/<mode>-<time>/`` (loadtest/README.md).
Exit status 1 when a request failed or a scenario sent nothing (a sweep, where overload is
the point: 0 unless a run broke), 2 when the test could not run."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import REPO
from loadtest.harness.machine import run_facts
from loadtest.locust.locust_process import LOCUST, LoadTestError, seconds_of
from loadtest.locust.network import ATLAS, EDGES, earnings, network
from loadtest.locust.one_run import CLASSES, print_run, run_once
from loadtest.locust.sweep import run_sweep, sweep_markdown

COOLDOWN = {"run": 5.0, "smoke": 2.0, "sweep": 20.0}
"""Idle seconds before the last RSS reading, by mode (``--cooldown``)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest locust", description="locust against "
                                "a whole local Atlas network (loadtest/README.md)")  # fmt: skip
    p.add_argument("-u", "--users", type=int, default=20)
    p.add_argument("-r", "--spawn-rate", type=float, default=5.0)
    p.add_argument("-t", "--run-time", type=seconds_of, default="60s", help="60s, 2m, ...")
    p.add_argument("--smoke", action="store_true", help="4 users (one per scenario) for 8 s")
    p.add_argument("--sweep", action="store_true", help="saturation sweep of an edge and the proxy")
    p.add_argument("--sweep-users", default="5,10,20,40,80,160")
    p.add_argument("--sweep-time", type=seconds_of, default="15s", help="length of a sweep step")
    p.add_argument("--sweep-reps", type=int, default=2)
    p.add_argument("--sweep-targets", default="edge,proxy")
    p.add_argument("--cooldown", type=float, help="idle seconds before the last RSS reading")
    p.add_argument("--reports", type=Path, help="default loadtest/reports/<mode>-<time>")
    args = p.parse_args(argv)
    args.mode = "sweep" if args.sweep else "smoke" if args.smoke else "run"
    if args.smoke:
        args.users, args.spawn_rate, args.run_time = len(CLASSES), len(CLASSES), 8
    if args.cooldown is None:
        args.cooldown = COOLDOWN[args.mode]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return load_test(parse_args(argv))
    except LoadTestError as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        return 2


def load_test(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.reports or REPO / "loadtest" / "reports" / f"{args.mode}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    for tool in (LOCUST, ATLAS):
        if not tool.exists():
            raise LoadTestError(f"{tool} missing: run make venv (and use .venv/bin/python)")
    workdir = Path(tempfile.mkdtemp(prefix="atlas-loadtest-"))
    info = {**run_facts(), "mode": args.mode, "users": args.users, "edges": EDGES,
            "spawn_rate": args.spawn_rate, "run_time_s": args.run_time,
            "cooldown_s": args.cooldown, "argv": sys.argv[1:]}  # fmt: skip
    print(f"atlas load test ({args.mode}), reports in {out}")
    stops: dict[str, Any] = {}
    result: dict[str, Any] = {}
    try:
        with network(workdir, out, stops) as net:
            result = run_sweep(args, net, out) if args.sweep else run_once(args, net, out)
        result["earnings"] = earnings(workdir / "atlas-data")
    finally:
        result.update(machine=info, stops=stops)
        (out / "summary.json").write_text(json.dumps(result, indent=1, default=str), "utf-8")
        shutil.rmtree(workdir, ignore_errors=True)
    if args.sweep:
        text = sweep_markdown(result["summary"], args.cooldown)
        (out / "sweep.md").write_text(text + "\n", "utf-8")
        print(f"\n{text}")
    else:
        print_run(result)
    print(f"\nnetwork: up in {stops.get('startup_s')} s, stopped in "
          f"{stops.get('atlas_up_stop_s')} s (SIGTERM to atlas up; edges redeem)")  # fmt: skip
    for edge, e in result.get("earnings", {}).items():
        print(f"  {edge}: {e}")
    print(f"reports: {out}")
    if args.sweep:
        return 0
    missing = [s for s in CLASSES if s not in result["scenarios"]]
    if missing:
        print(f"scenarios that sent nothing: {missing}")
    failed = sum(s["failures"] for s in result["scenarios"].values())
    return 1 if failed or missing or result["locust_exit"] not in (0, 1) else 0
