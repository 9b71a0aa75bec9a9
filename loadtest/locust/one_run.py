"""One load test run (``python -m loadtest locust``): the four scenarios together, then
per scenario its requests, failures by kind and latencies, and per server its memory
and CPU, the load average and the origin's hits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadtest.harness.rows import table
from loadtest.locust.locust_process import SCENARIOS_FILE, run_locust
from loadtest.locust.network import Network

CLASSES = {"browser": "BrowserUser", "mobile": "MobileUser", "paying": "PayingEdgeUser",
           "operator": "OperatorUser"}  # fmt: skip
"""Each scenario and its locust user class (``loadtest/locust/scenarios.py``)."""
SMOKE_THINK = {"ATLAS_LT_THINK_BROWSER": "0.2,0.5", "ATLAS_LT_THINK_MOBILE": "0.2,0.5",
               "ATLAS_LT_THINK_PAYING": "0.05,0.2", "ATLAS_LT_LARGE_P": "0.3"}  # fmt: skip
"""``--smoke``: one user per scenario with short think times, so each runs many times."""
MIB_COLUMNS = ("rss_before_mib", "rss_after_mib", "rss_peak_mib", "rss_cooled_mib")


def origin_counts(origin: str, what: str) -> dict[str, int]:
    """The test origin's ``/hits`` or ``/sent`` (per path); empty if it cannot say."""
    url = f"{origin}/{what}"  # the loopback origin this run started
    with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=10) as r:
        counts: dict[str, int] = json.loads(r.read())
        return counts
    return {}


def run_once(args: argparse.Namespace, net: Network, out: Path) -> dict[str, Any]:
    env, extra = dict(net.env), []
    if args.smoke:
        env.update(SMOKE_THINK)
        config = out / "smoke_users.json"  # a file: configargparse mangles a JSON array
        users = [{"user_class_name": c, "fixed_count": 1} for c in CLASSES.values()]
        config.write_text(json.dumps(users))
        extra = ["--config-users", str(config)]
    before, load_before = net.samples(), os.getloadavg()
    net.reset_peaks()
    run = run_locust(out / "locust", SCENARIOS_FILE, list(CLASSES.values()), args.users,
                     args.spawn_rate, args.run_time, env, extra)  # fmt: skip
    after, load_after = net.samples(), os.getloadavg()
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
        "processes": processes, "loadavg_before": load_before, "loadavg_after": load_after,
        "origin_hits": origin_counts(net.origin_url, "hits"),
        "origin_sent_bytes": origin_counts(net.origin_url, "sent"), "cooldown_s": args.cooldown,
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
    if hits := result["origin_hits"]:
        video_mib = result["origin_sent_bytes"].get("/site/video.bin", 0) / 2**20
        ranges = result["scenarios"].get("mobile", {}).get("requests", 0)
        print(f"origin: {sum(hits.values())} requests in all; /site/video.bin (20 MiB) asked "
              f"{hits.get('/site/video.bin', 0)} times, {video_mib:.1f} MiB sent, for {ranges} "
              "mobile Range requests")  # fmt: skip
    la, lb = result["loadavg_before"], result["loadavg_after"]
    print(f"load average before {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, "
          f"after {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}")  # fmt: skip


def kinds_text(kinds: dict[str, int]) -> str:
    """Failures by kind, ``shed 12, timeout 1``, or ``-``."""
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "-"
