"""The four measurements: rps, latency, stream and rss, each of atlas proxy against mitmdump."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import aiohttp

from loadtest.harness.children import BenchError
from loadtest.harness.procfs import RssSampler, proc_status_kib, reset_peak_rss
from loadtest.harness.rows import GB, KIB, Row, make_row, size_text
from loadtest.proxybench.bench import (
    SMALL,
    TARGETS,
    Bench,
    atlas_headers_check,
    curl_via,
    get_checked,
)
from loadtest.proxybench.cpu import cpu_seconds
from loadtest.proxybench.load import LoadRun, run_aiohttp_load, run_hey

# --- 1: small-object requests/s -------------------------------------------------------------


async def load(bench: Bench, target: str, seconds: float) -> LoadRun:
    cfg, loop = bench.cfg, asyncio.get_running_loop()
    if bench.client == "hey":
        return await loop.run_in_executor(
            None, run_hey, bench.small_url, bench.via(target), seconds, cfg.concurrency
        )
    return await run_aiohttp_load(bench.small_url, bench.via(target), seconds, cfg.concurrency)


def check_load(run: LoadRun, target: str) -> None:
    bad = {s: n for s, n in run.statuses.items() if s != 200}
    if bad or run.errors or not run.responses:
        raise BenchError(f"{target}: {run.responses} responses, non-200 {bad}, {run.errors} errors")
    if run.body_bytes != run.responses * SMALL:
        raise BenchError(f"{target}: {run.body_bytes} body bytes for {run.responses} responses")


async def bench_rps(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    for target in TARGETS:  # warm-up, not counted: connections, caches, interpreters
        check_load(await load(bench, target, min(1.0, cfg.rps_seconds)), target)
    samples: dict[str, list[float]] = {t: [] for t in TARGETS}
    cpu: dict[str, list[dict[str, float]]] = {t: [] for t in TARGETS}
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    totals = {"responses": 0, "hit": 0.0, "miss": 0.0, "served": 0.0, "accepted": 0.0}
    for rep in range(cfg.reps):
        order = TARGETS if rep % 2 == 0 else TARGETS[::-1]
        for target in order:
            counters = await bench.counters()
            before = bench.cpu_snapshot()
            run = await load(bench, target, cfg.rps_seconds)
            after = bench.cpu_snapshot()
            delta = {k: v - counters[k] for k, v in (await bench.counters()).items()}
            check_load(run, target)
            samples[target].append(run.rps)
            per_request = {k: (after[k] - before[k]) * 1000 / run.responses for k in after}
            per_request["client"] = run.client_cpu * 1000 / run.responses
            cpu[target].append(per_request)
            runs[target].append({**asdict(run), "edge_counters": delta})
            if target == "atlas":
                totals["responses"] += run.responses
                for key in ("hit", "miss", "served", "accepted"):
                    totals[key] += delta[key]
            elif delta["hit"] or delta["miss"]:
                raise BenchError("a mitmdump run reached an edge")
    bench.checks["rps"] = {"runs": runs, "atlas_totals": totals, "cpu_ms_per_request": cpu}
    # Every Atlas response is one /v1/fetch (a HIT) and at least one paid chunk: paid by a
    # voucher, or by the credit earlier vouchers left (the proxy pays a full chunk's price
    # ahead, so small objects leave credit that pays for later ones).
    if totals["miss"] or totals["hit"] < totals["responses"]:
        raise BenchError(f"atlas rps: edge counters do not match the responses: {totals}")
    if totals["served"] < totals["responses"] or not totals["accepted"]:
        raise BenchError(f"atlas rps: fewer paid chunks than responses: {totals}")
    bench.notes.append(
        f"rps: {bench.client} -c {cfg.concurrency} (one keep-alive connection per worker) for "
        f"{cfg.rps_seconds:g} s per run, one {SMALL // KIB} KiB object (the same URL every time: "
        f"a cache HIT at the origin edge); every response 200 with {SMALL} body bytes (checked); "
        f"Atlas runs: {totals['responses']} responses, {totals['hit']:.0f} /v1/fetch HITs, "
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
        make_row(
            "small_rps",
            f"requests/s, {SMALL // KIB} KiB cached object, {bench.client} -c {cfg.concurrency}",
            "req/s",
            samples["atlas"],
            f"plain mitmdump (stream_large_bodies=1) forwarding to nginx, same {bench.client}",
            samples["mitmdump"],
            "ratio >= 0.90",
            lambda _m, ratio: ratio >= 0.9,
        )
    ]


# --- 2: latency of one small object ---------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def bench_latency(bench: Bench) -> list[Row]:
    cfg = bench.cfg
    digest = bench.net.files["small.bin"]
    paths = {"direct": None, "mitmdump": bench.mitm.url, "atlas": bench.proxy.url}
    p50: dict[str, list[float]] = {p: [] for p in paths}
    every: dict[str, list[float]] = {p: [] for p in paths}
    timeout = aiohttp.ClientTimeout(total=30)
    async with contextlib.AsyncExitStack() as stack:
        sessions = {
            p: await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
            )
            for p in paths
        }
        for path, proxy in paths.items():  # warm-up: the connection, both proxies' paths
            for _ in range(5):
                await get_checked(sessions[path], bench.small_url, proxy, digest, SMALL)
        names = list(paths)
        for rep in range(cfg.latency_reps):
            shift = rep % len(names)
            for path in [*names[shift:], *names[:shift]]:
                session, proxy = sessions[path], paths[path]
                times = []
                for i in range(cfg.latency_requests):
                    started = time.perf_counter()
                    async with session.get(bench.small_url, proxy=proxy) as response:
                        body = await response.read()
                    times.append((time.perf_counter() - started) * 1000)
                    if response.status != 200 or len(body) != SMALL:
                        raise BenchError(f"latency via {path}: {response.status}, {len(body)} B")
                    if i == 0 and hashlib.sha256(body).hexdigest() != digest:
                        raise BenchError(f"latency via {path}: the bytes differ")
                p50[path].append(statistics.median(times))
                every[path] += times
    added = {
        t: [p - d for p, d in zip(p50[t], p50["direct"], strict=True)]
        for t in ("atlas", "mitmdump")
    }
    bench.checks["latency"] = {"p50_ms": p50, "added_ms": added, "requests": cfg.latency_requests}
    bench.notes.append(
        f"latency: {cfg.latency_requests} sequential GETs of the {SMALL // KIB} KiB object per "
        f"path and rep (aiohttp, one keep-alive connection); all reps pooled, ms: "
        + "; ".join(
            f"{path} p50 {percentile(v, 0.5):.2f} p90 {percentile(v, 0.9):.2f} "
            f"p99 {percentile(v, 0.99):.2f}"
            for path, v in every.items()
        )
    )
    return [
        make_row(
            "latency_added",
            f"added p50 latency through atlas proxy, {SMALL // KIB} KiB cached object",
            "ms",
            added["atlas"],
            "added p50 latency through plain mitmdump (each = p50 via proxy - p50 direct)",
            added["mitmdump"],
            "<= 5 ms",
            lambda median, _r: median <= 5.0,
        ),
        make_row(
            "latency_p50",
            f"p50 latency through atlas proxy, {SMALL // KIB} KiB cached object",
            "ms",
            p50["atlas"],
            "p50 latency straight from nginx (no proxy), same client",
            p50["direct"],
        ),
    ]


async def bench_stream(bench: Bench) -> list[Row]:
    cfg, loop = bench.cfg, asyncio.get_running_loop()
    size = cfg.size
    rates: dict[str, list[float]] = {"atlas": [], "mitmdump": [], "direct": []}
    cpu: dict[str, list[float]] = {"atlas": [], "mitmdump": []}
    rss: list[float] = []
    counters = await bench.counters()

    def one(target: str) -> None:
        pid = bench.proxy.pid if target == "atlas" else bench.mitm.pid
        before = cpu_seconds(pid)
        with RssSampler(bench.proxy.pid) as sampler:
            run = curl_via(bench, None if target == "direct" else target, "body.bin")
        rates[target].append(size / run.seconds / GB)
        if target != "direct":
            cpu[target].append((cpu_seconds(pid) - before) / (size / GB))
        if target == "atlas":
            atlas_headers_check(run.headers, bench.cached_id)
            rss.append(sampler.peak / KIB)

    await loop.run_in_executor(None, one, "mitmdump")  # warm-up (the proxy's is in setup)
    rates["mitmdump"].clear()
    cpu["mitmdump"].clear()
    steps = ["atlas", "mitmdump", "direct"]
    for rep in range(cfg.stream_reps):
        shift = rep % len(steps)
        for target in [*steps[shift:], *steps[:shift]]:
            await loop.run_in_executor(None, one, target)
    delta = {k: v - counters[k] for k, v in (await bench.counters()).items()}
    bench.checks["stream"] = {
        "bytes": size,
        "gb_per_s": rates,
        "cpu_s_per_gb": cpu,
        "edge_counters": delta,
        "proxy_rss_mib": rss,
    }
    if delta["hit"] != cfg.stream_reps or delta["miss"]:
        raise BenchError(f"stream: origin edge counted {delta} for {cfg.stream_reps} downloads")
    text = size_text(size)
    bench.notes.append(
        f"stream: curl -x PROXY -o FILE, {text}, file checked by SHA-256 after every run; Atlas: "
        f"cached (a /v1/fetch HIT, content id checked; edge2 and edge3 hold full replicas); "
        f"direct curl from nginx {statistics.median(rates['direct']):.3f} GB/s; CPU s per GB: "
        f"atlas proxy {statistics.median(cpu['atlas']):.2f}, mitmdump "
        f"{statistics.median(cpu['mitmdump']):.2f}; proxy RSS during the runs "
        f"{max(rss):.0f} MiB at most"
    )
    return [
        make_row(
            "stream_download",
            f"{text} download through atlas proxy (curl -x), cached",
            "GB/s",
            rates["atlas"],
            f"the same curl through plain mitmdump streaming, same {text} from nginx",
            rates["mitmdump"],
            "ratio >= 1.00",
            lambda _m, ratio: ratio >= 1.0,
        )
    ]


# --- 4: memory of the proxy during 1 GiB ----------------------------------------------------


async def bench_rss(bench: Bench) -> list[Row]:
    cfg, loop = bench.cfg, asyncio.get_running_loop()
    growth: dict[str, list[float]] = {t: [] for t in TARGETS}
    rates: dict[str, list[float]] = {t: [] for t in TARGETS}
    reset_ok = True

    def one(target: str) -> None:
        nonlocal reset_ok
        pid = bench.proxy.pid if target == "atlas" else bench.mitm.pid
        base = proc_status_kib(pid, "VmRSS")
        reset_ok = reset_peak_rss(pid) and reset_ok
        with RssSampler(pid) as sampler:
            run = curl_via(bench, target, "big.bin", "?rss")
        peak = max(sampler.peak, proc_status_kib(pid, "VmHWM") if reset_ok else 0)
        growth[target].append((peak - base) / KIB)
        rates[target].append(cfg.rss_size / run.seconds / GB)
        if target == "atlas":
            atlas_headers_check(run.headers)

    counters = await bench.counters()
    for rep in range(cfg.rss_reps):
        for target in TARGETS if rep % 2 == 0 else TARGETS[::-1]:
            await loop.run_in_executor(None, one, target)
    delta = {k: v - counters[k] for k, v in (await bench.counters()).items()}
    bench.checks["rss"] = {
        "bytes": cfg.rss_size,
        "growth_mib": growth,
        "gb_per_s": rates,
        "hwm_reset": reset_ok,
        "edge_counters": delta,
    }
    if delta["miss"] != 1 or delta["hit"] != cfg.rss_reps - 1:
        raise BenchError(f"rss: origin edge counted {delta} for {cfg.rss_reps} downloads")
    text = size_text(cfg.rss_size)
    bench.notes.append(
        f"rss: {text} through each proxy with curl -x (file checked); Atlas rep 1 is a first "
        "fetch (the origin edge pulls from nginx while the edges serve it), later reps the same "
        "URL again (a HIT at the origin edge; edge2/edge3 replicate what they are asked for); "
        "growth = peak (VmHWM after a clear_refs reset, and VmRSS polled every 10 ms) - VmRSS "
        "before; per rep MiB: "
        + "; ".join(f"{t} " + ", ".join(f"{g:.1f}" for g in growth[t]) for t in TARGETS)
        + ("" if reset_ok else " (VmRSS polling only: clear_refs refused)")
        + "; GB/s: "
        + "; ".join(f"{t} " + ", ".join(f"{r:.3f}" for r in rates[t]) for t in TARGETS)
    )
    return [
        make_row(
            "rss_growth",
            f"atlas proxy peak RSS growth, {text} downloaded through it",
            "MiB",
            growth["atlas"],
            f"plain mitmdump's peak RSS growth, the same {text} streamed through it",
            growth["mitmdump"],
            "< 64 MiB",
            lambda _m, _r: max(growth["atlas"]) < 64,
        )
    ]
