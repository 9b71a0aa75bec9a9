"""The saturation sweep (``python -m loadtest sweep``): closed-loop users stepped through
``--sweep-users`` against one edge (paid chunks) and against the proxy (small objects),
``--sweep-reps`` times; per step the medians of requests/s, p50/p95, errors by kind
(``shed`` = 429/503 with Retry-After, ``timeout``, ...), the CPU of the process under test
and of locust, the load average, and where p95 doubles against the lightest step."""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

from loadtest.harness.children import BenchError
from loadtest.harness.procfs import Poller, cpu_seconds
from loadtest.locust.network import SWEEP_FILE, Network, kinds_text

SWEEP_TARGETS = {
    "edge": ("EdgeSweepUser", "edge-sweep: chunk", "edge1"),
    "proxy": ("ProxySweepUser", "proxy-sweep: object", "proxy"),
}
"""Sweep target: locust class, the request row measured, the process under test."""
LOCUST_COLUMNS = {"rps": "Requests/s", "p50_ms": "50%", "p95_ms": "95%", "p99_ms": "99%",
                  "max_ms": "Max Response Time"}  # fmt: skip
MEDIANS = ("rps", "p50_ms", "p95_ms", "error_pct", "target_cpu_pct", "locust_cpu_pct",
           "target_cpu_ms_per_request", "loadavg1")  # fmt: skip
"""What a table row takes the median of, over the repetitions of a step."""
SETTLE_S = 2.0
"""Idle seconds after the warm-up and between two steps."""


def run_sweep(args: argparse.Namespace, net: Network, out: Path) -> dict[str, Any]:
    users = [int(u) for u in args.sweep_users.split(",")]
    targets = [t for t in args.sweep_targets.split(",") if t]
    if unknown := set(targets) - set(SWEEP_TARGETS):
        raise BenchError(f"unknown sweep targets {sorted(unknown)}")
    # Warm-up (not measured): the proxy's channels, the edges' caches, the paid content.
    for target in targets:
        net.locust(out / f"warmup_{target}", SWEEP_FILE, [SWEEP_TARGETS[target][0]], 2, 2, 4)
    time.sleep(SETTLE_S)
    baseline = {r: s.rss_mib for r, s in net.samples().items()}
    steps = []
    for rep in range(1, args.sweep_reps + 1):
        for target in targets:
            for u in users:
                steps.append(sweep_step(args, net, out, target, u, rep))
                time.sleep(SETTLE_S)
    time.sleep(args.cooldown)
    cooled = {r: s.rss_mib for r, s in net.samples().items()}
    return {"steps": steps, "summary": summarize_sweep(steps, users, baseline, cooled),
            "rss_baseline_mib": baseline, "rss_cooled_mib": cooled,
            "cooldown_s": args.cooldown}  # fmt: skip


def sweep_step(args: argparse.Namespace, net: Network, out: Path, target: str, users: int,
               rep: int) -> dict[str, Any]:  # fmt: skip
    cls, row_name, role = SWEEP_TARGETS[target]
    load, series = os.getloadavg(), list[tuple[float, dict[str, float]]]()

    def sample() -> None:  # the CPU seconds of each server
        series.append((time.time(), {r: cpu_seconds(pid) for r, pid in net.roles.items()}))

    with Poller(sample, 0.5):
        run = net.locust(out / f"{target}_u{users:03d}_rep{rep}", SWEEP_FILE, [cls], users,
                         users, args.sweep_time, ["--reset-stats"])  # fmt: skip
    cpu = cpu_percent(series, run.measured_window(users))
    row = run.row(row_name)
    requests, failures = int(row.get("Request Count") or 0), int(row.get("Failure Count") or 0)
    scenario = run.scenarios.get(row_name.split(":")[0], {})
    step: dict[str, Any] = {
        "target": target, "users": users, "rep": rep, "requests": requests, "failures": failures,
        "error_pct": 100 * failures / requests if requests else 0.0,
        "failure_kinds": scenario.get("failure_kinds", {}),
        **{key: float(row.get(column) or 0) for key, column in LOCUST_COLUMNS.items()},
        "loadavg1": load[0], "cpu_pct": cpu, "target_cpu_pct": cpu.get(role, 0.0),
        "locust_cpu_pct": round(100 * run.cpu_s / run.wall_s, 1),
    }  # fmt: skip
    step["target_cpu_ms_per_request"] = (
        round(10 * cpu[role] / step["rps"], 2) if role in cpu and step["rps"] > 0 else None
    )
    print(f"  {target:<5} u={users:<3} rep {rep}: {step['rps']:7.1f} req/s  p50 "
          f"{step['p50_ms']:5.0f} ms  p95 {step['p95_ms']:5.0f} ms  errors {failures} "
          f"({kinds_text(step['failure_kinds'])})  {role} CPU {step['target_cpu_pct']:.0f}%  "
          f"locust {step['locust_cpu_pct']:.0f}%  load {load[0]:.2f}")  # fmt: skip
    return step


def cpu_percent(
    series: list[tuple[float, dict[str, float]]], window: tuple[float, float] | None
) -> dict[str, float]:
    """CPU % per server between the first and last samples inside ``window`` (the seconds
    locust measured, all users running: not its start and stop)."""
    inside = [(t, cpu) for t, cpu in series if window and window[0] <= t <= window[1]]
    if len(inside) < 2:
        return {}
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return {r: round(100 * (c1[r] - c0[r]) / (t1 - t0), 1) for r in c0 if r in c1}


def summarize_sweep(steps: list[dict[str, Any]], users: list[int], baseline: dict[str, Any],
                    cooled: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Per target: a row per user count (medians over the repetitions), the knee (the first
    row whose p95 is at least twice the lightest row's), the peak rate, RSS before and after."""
    out: dict[str, Any] = {}
    for target, (_, _, role) in SWEEP_TARGETS.items():
        table = []
        for u in users:
            mine = [s for s in steps if s["target"] == target and s["users"] == u]
            if not mine:
                continue
            kinds = sum((Counter(s["failure_kinds"]) for s in mine), Counter[str]())
            p95s = [s["p95_ms"] for s in mine]
            table.append({
                "users": u, "reps": len(mine),
                **{k: median(s[k] or 0.0 for s in mine) for k in MEDIANS},
                "p95_range": [min(p95s), max(p95s)], "failure_kinds": dict(kinds),
                "failures": sum(s["failures"] for s in mine),
                "requests": sum(s["requests"] for s in mine),
            })  # fmt: skip
        if table:
            base_p95 = table[0]["p95_ms"] or 1.0
            out[target] = {
                "process": role, "table": table, "base_p95_ms": base_p95,
                "knee": next((r for r in table if r["p95_ms"] >= 2 * base_p95), None),
                "peak": max(table, key=lambda r: r["rps"]),
                "rss_baseline_mib": baseline.get(role), "rss_cooled_mib": cooled.get(role),
            }  # fmt: skip
    return out


def sweep_markdown(summary: dict[str, Any], cooldown_s: float) -> str:
    lines = []
    for target, s in summary.items():
        knee, peak = s["knee"], s["peak"]
        where = f"{knee['users']} users, {knee['rps']:.0f} req/s" if knee else "no step"
        lines += [
            f"**{target}** (process `{s['process']}`): p95 doubles at {where}; "
            f"peak {peak['rps']:.0f} req/s at {peak['users']} users", "",
            "| users | req/s | p50 ms | p95 ms (range) | errors % | errors by kind (all reps) | "
            "CPU % of process | CPU ms/req | CPU % of locust | load avg 1m |",
            "|---:|---:|---:|---|---:|---|---:|---:|---:|---:|",
        ]  # fmt: skip
        for r in s["table"]:
            lines.append(
                f"| {r['users']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} "
                f"({r['p95_range'][0]:.0f}-{r['p95_range'][1]:.0f}) | {r['error_pct']:.2f} | "
                f"{kinds_text(r['failure_kinds'])} | {r['target_cpu_pct']:.0f} | "
                f"{r['target_cpu_ms_per_request']:.2f} | {r['locust_cpu_pct']:.0f} | "
                f"{r['loadavg1']:.2f} |"
            )
        base, cooled = s["rss_baseline_mib"], s["rss_cooled_mib"]
        if base is not None and cooled is not None:
            lines += ["", f"RSS of `{s['process']}`: {base:.0f} MiB before the sweep, "
                          f"{cooled:.0f} MiB after it and {cooldown_s:.0f} s idle."]  # fmt: skip
        lines.append("")
    return "\n".join(lines)
