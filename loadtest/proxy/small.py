"""The small-object parts: requests/s under load (``hey``) and the latency of one request at a
time, through atlas proxy, plain mitmdump and straight to nginx."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from loadtest.harness.children import BenchError, run_timed
from loadtest.harness.network import client_env
from loadtest.harness.procfs import cpu_clock
from loadtest.harness.rows import KIB, Row, make_row, rotated
from loadtest.proxy.bench import SMALL, TARGETS, ProxyBench, get_checked


@dataclass(frozen=True, slots=True)
class LoadRun:
    responses: int
    rps: float
    statuses: dict[int, int]
    errors: int
    body_bytes: int
    client_cpu: float


async def load(bench: ProxyBench, target: str, seconds: float) -> LoadRun:
    """``hey -z S -c C -x http://PROXY URL`` (keep-alive, one connection per worker) through
    ``target``, parsed; every response must be a 200 of SMALL bytes."""
    argv = [shutil.which("hey") or "hey", "-z", f"{seconds:g}s", "-c", str(bench.cfg.concurrency)]
    argv += ["-t", "30", "-disable-compression", "-x", bench.via(target), bench.small_url]
    run = await asyncio.to_thread(run_timed, argv, client_env(), bench.net.workdir, "hey")
    out = run.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise BenchError(f"hey printed no rate: {out[-1500:]}")
    data = re.search(r"Total data:\s+(\d+) bytes", out)
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    tail = out.partition("Error distribution:")[2]
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", tail, re.MULTILINE))
    body = int(data[1]) if data else 0
    result = LoadRun(sum(statuses.values()), float(rps[1]), statuses, errors, body, run.cpu)
    bad = {s: n for s, n in statuses.items() if s != 200}
    if bad or errors or not result.responses or body != result.responses * SMALL:
        raise BenchError(f"{target}: non-200 {bad}, {errors} errors, {result}")
    return result


async def bench_rps(bench: ProxyBench) -> list[Row]:
    cfg = bench.cfg
    for target in TARGETS:  # warm-up, not counted: connections, caches, interpreters
        await load(bench, target, min(1.0, cfg.rps_seconds))
    samples: dict[str, list[float]] = {t: [] for t in TARGETS}
    cpu: dict[str, list[dict[str, float]]] = {t: [] for t in TARGETS}
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    totals = {"responses": 0, "hit": 0.0, "miss": 0.0, "served": 0.0, "accepted": 0.0}
    servers = {p.name: p.pid for p in bench.net.procs.running}  # each edge as its own
    for _, target in rotated(cfg.reps, TARGETS):
        counters, used = bench.net.counters(), cpu_clock(servers)
        run = await load(bench, target, cfg.rps_seconds)
        spent, delta = used(), bench.net.counters(since=counters)
        samples[target].append(run.rps)
        per_request = {k: v * 1000 / run.responses for k, v in spent.items()}
        cpu[target].append({**per_request, "client": run.client_cpu * 1000 / run.responses})
        runs[target].append({**asdict(run), "edge_counters": delta})
        if target == "atlas":
            totals["responses"] += run.responses
            for key in ("hit", "miss", "served", "accepted"):
                totals[key] += delta[key]
        elif delta["hit"] or delta["miss"]:
            raise BenchError("a mitmdump run reached an edge")
    bench.checks["rps"] = {"runs": runs, "atlas_totals": totals}
    # Every Atlas response is at least one paid chunk: paid by a voucher, or by the credit
    # earlier vouchers left (the proxy pays a full chunk's price ahead, so small objects leave
    # credit that pays for later ones). Its head comes from a /v1/fetch HIT, or is one such
    # head the proxy reuses while it is fresh (proxy/fresh_heads.py, at most 30 s, so a short
    # run may see no HIT at all): never a MISS.
    if totals["miss"]:
        raise BenchError(f"atlas rps: edge counters do not match the responses: {totals}")
    if totals["served"] < totals["responses"] or not totals["accepted"]:
        raise BenchError(f"atlas rps: fewer paid chunks than responses: {totals}")
    bench.notes.append(
        f"rps: hey -c {cfg.concurrency} (one keep-alive connection per worker) for "
        f"{cfg.rps_seconds:g} s per run, one {SMALL // KIB} KiB object (the same URL every time: "
        f"a cache HIT at the origin edge); every response 200 with {SMALL} body bytes (checked); "
        f"Atlas runs: {totals['responses']} responses, {totals['hit']:.0f} /v1/fetch HITs (the "
        "others reuse a fresh head the proxy verified, docs/proxy.md), "
        f"{totals['served']:.0f} chunks paid by voucher, {totals['accepted']:.0f} vouchers "
        "accepted at the edges"
    )
    for target in TARGETS:
        med = {k: statistics.median(c[k] for c in cpu[target]) for k in cpu[target][0]}
        busy = {k: v for k, v in med.items() if v >= 0.05}
        bench.notes.append(
            f"rps: CPU ms per request through {target} (median over runs): "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(busy.items(), key=lambda kv: -kv[1]))
            + f"; all {sum(med.values()):.2f} ms (2 cores give "
            f"{2000 / max(sum(med.values()), 1e-9):.0f} requests/s at most)"
        )
    return [
        make_row("small_rps", f"requests/s, {SMALL // KIB} KiB cached object, hey -c "
                 f"{cfg.concurrency}", "req/s", samples["atlas"], "plain mitmdump "
                 "(stream_large_bodies=1) forwarding to nginx, same hey", samples["mitmdump"],
                 "ratio >= 0.90", lambda _m, ratio: ratio >= 0.9)
    ]  # fmt: skip


async def bench_latency(bench: ProxyBench) -> list[Row]:
    cfg = bench.cfg
    digest = bench.net.files["small.bin"]
    paths = {"direct": None, "mitmdump": bench.mitm.url, "atlas": bench.proxy.url}
    p50: dict[str, list[float]] = {p: [] for p in paths}
    timeout = aiohttp.ClientTimeout(total=30)
    async with contextlib.AsyncExitStack() as stack:
        sessions = {
            p: await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
            )
            for p in paths
        }
        for path, proxy in paths.items():  # warm-up (connection, proxy paths), bytes checked
            for _ in range(5):
                await get_checked(sessions[path], bench.small_url, proxy, digest, SMALL)
        for _, path in rotated(cfg.latency_reps, list(paths)):
            times = []
            for _ in range(cfg.latency_requests):
                started = time.perf_counter()
                async with sessions[path].get(bench.small_url, proxy=paths[path]) as response:
                    body = await response.read()
                times.append((time.perf_counter() - started) * 1000)
                if response.status != 200 or len(body) != SMALL:
                    raise BenchError(f"latency via {path}: {response.status}, {len(body)} B")
            p50[path].append(statistics.median(times))
    added = {
        t: [p - d for p, d in zip(p50[t], p50["direct"], strict=True)]
        for t in ("atlas", "mitmdump")
    }
    bench.notes.append(
        f"latency: {cfg.latency_requests} sequential GETs of the {SMALL // KIB} KiB object per "
        "path and rep (aiohttp, one keep-alive connection); a rep's figure is their p50"
    )
    what = f"{SMALL // KIB} KiB cached object"
    return [
        make_row("latency_added", f"added p50 latency through atlas proxy, {what}", "ms",
                 added["atlas"], "added p50 latency through plain mitmdump (each = p50 via "
                 "proxy - p50 direct)", added["mitmdump"], "<= 5 ms",
                 lambda median, _r: median <= 5.0),
        make_row("latency_p50", f"p50 latency through atlas proxy, {what}", "ms", p50["atlas"],
                 "p50 latency straight from nginx (no proxy), same client", p50["direct"]),
    ]  # fmt: skip
