"""The download parts, timed by curl: a cached body through each proxy (stream), peak RSS of
each proxy during a large first fetch (rss), and throughput by payload size (sizes: the
curve ``docs/performance.md`` plots)."""

from __future__ import annotations

import asyncio
import statistics

from loadtest.harness.blobs import write_blob
from loadtest.harness.children import BenchError
from loadtest.harness.procfs import RssGrowth, cpu_clock
from loadtest.harness.rows import GB, KIB, Row, make_row, rotated, size_text
from loadtest.proxy.bench import TARGETS, ProxyBench

PATHS = ("atlas", "mitmdump", "direct")
SALT = 100  # blob salts from here on: distinct from the other files', so no chunk is shared
MB = 1e6
RSS_GOAL_MIB = 3.0
"""Issue 18: the proxy's peak RSS growth during 1 GiB no worse than before the bulk path
(2.7 MiB with 256 KiB chunks and a window of 8)."""


async def bench_sizes(bench: ProxyBench) -> list[Row]:
    cfg, net = bench.cfg, bench.net
    rates: dict[int, dict[str, list[float]]] = {s: {p: [] for p in PATHS} for s in cfg.sizes}
    for i, size in enumerate(cfg.sizes):
        name = f"size-{size}.bin"
        www = net.workdir / "nginx" / "www" / name
        net.files[name] = await asyncio.to_thread(write_blob, www, size, SALT + i)
        # Warm-up, not timed: the origin edge's MISS, the replicas, both proxies' paths.
        _, cid = await asyncio.to_thread(bench.curl, "atlas", name)
        warm = [(False, path) for path in PATHS]
        for counted, path in [*warm, *((True, p) for _, p in rotated(cfg.sizes_reps, PATHS))]:
            via = None if path == "direct" else path
            seconds, _ = await asyncio.to_thread(bench.curl, via, name, "", cid)
            if counted:
                rates[size][path].append(size / seconds / MB)
    medians = {p: [statistics.median(rates[s][p]) for s in cfg.sizes] for p in PATHS}
    bench.checks["sizes"] = {"bytes": list(cfg.sizes), "unit": "MB/s", "median": medians}
    direct = zip(cfg.sizes, medians["direct"], strict=True)
    bench.notes.append(
        f"sizes: curl -o FILE [-x PROXY], time = curl's time_total, {cfg.sizes_reps} timed "
        "runs per size and path after one untimed warm-up (Atlas: the first request is the "
        "origin edge's MISS, later ones HITs of the same content id); direct nginx MB/s by "
        "size: " + ", ".join(f"{size_text(s)} {m:,.1f}" for s, m in direct)
    )
    return [
        make_row(f"size_{size}", f"{size_text(size)} download through atlas proxy (curl -x), "
                 "cached", "MB/s", rates[size]["atlas"], "the same curl through plain mitmdump "
                 "streaming, same file from nginx", rates[size]["mitmdump"])
        for size in cfg.sizes
    ]  # fmt: skip


async def bench_stream(bench: ProxyBench) -> list[Row]:
    cfg, size = bench.cfg, bench.cfg.size
    rates: dict[str, list[float]] = {path: [] for path in PATHS}
    cpu: dict[str, list[float]] = {"atlas": [], "mitmdump": []}
    counters = bench.net.counters()

    def one(target: str, timed: bool = True) -> None:
        used = cpu_clock({"atlas": bench.proxy.pid, "mitmdump": bench.mitm.pid})
        via = None if target == "direct" else target
        seconds, _ = bench.curl(via, "body.bin", "", bench.cached_id)
        if timed:
            rates[target].append(size / seconds / GB)
        if timed and via:
            cpu[target].append(used()[target] / (size / GB))

    await asyncio.to_thread(one, "mitmdump", False)  # warm-up (the proxy's is in setup)
    for _, target in rotated(cfg.stream_reps, PATHS):
        await asyncio.to_thread(one, target)
    delta = bench.net.counters(since=counters)
    bench.checks["stream"] = {"edge_counters": delta}
    if delta["hit"] != cfg.stream_reps or delta["miss"]:
        raise BenchError(f"stream: origin edge counted {delta} for {cfg.stream_reps} downloads")
    text = size_text(size)
    bench.notes.append(
        f"stream: curl -x PROXY -o FILE, {text}, file checked by SHA-256 after every run; Atlas: "
        f"cached (a /v1/fetch HIT, content id checked; edge2 and edge3 hold full replicas); "
        f"direct curl from nginx {statistics.median(rates['direct']):.3f} GB/s; CPU s per GB: "
        f"atlas proxy {statistics.median(cpu['atlas']):.2f}, mitmdump "
        f"{statistics.median(cpu['mitmdump']):.2f}"
    )
    return [
        make_row("stream_download", f"{text} download through atlas proxy (curl -x), cached",
                 "GB/s", rates["atlas"], f"the same curl through plain mitmdump streaming, "
                 f"same {text} from nginx", rates["mitmdump"], "ratio >= 1.00",
                 lambda _m, ratio: ratio >= 1.0)
    ]  # fmt: skip


async def bench_rss(bench: ProxyBench) -> list[Row]:
    cfg = bench.cfg
    growth: dict[str, list[float]] = {t: [] for t in TARGETS}
    rates: dict[str, list[float]] = {t: [] for t in TARGETS}
    reset_ok = True

    def one(target: str) -> None:
        nonlocal reset_ok
        with RssGrowth(bench.proxy.pid if target == "atlas" else bench.mitm.pid) as peak:
            seconds, _ = bench.curl(target, "big.bin", "?rss")
        reset_ok &= peak.hwm_reset
        growth[target].append(peak.growth_kib / KIB)
        rates[target].append(cfg.rss_size / seconds / GB)

    counters = bench.net.counters()
    for _, target in rotated(cfg.rss_reps, TARGETS):
        await asyncio.to_thread(one, target)
    delta = bench.net.counters(since=counters)
    bench.checks["rss"] = {"edge_counters": delta}
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
        make_row("rss_growth", f"atlas proxy peak RSS growth, {text} downloaded through it",
                 "MiB", growth["atlas"], f"plain mitmdump's peak RSS growth, the same {text} "
                 "streamed through it", growth["mitmdump"], f"<= {RSS_GOAL_MIB:g} MiB",
                 lambda _m, _r: max(growth["atlas"]) <= RSS_GOAL_MIB)
    ]  # fmt: skip
