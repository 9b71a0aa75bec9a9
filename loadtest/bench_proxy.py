"""End-to-end benchmark of the browser proxy (``atlas proxy``), run by ``make bench``.

Real processes on 127.0.0.1, all children of this one: a ledger with faucet, nginx (the
origin, ``expires 1h`` so edges cache), a tracker and three paid edges (``--free-mib 0``),
``atlas proxy`` with a funded wallet whose channels are open, and, as the reference, a
plain ``mitmdump`` (``stream_large_bodies=1``, its own confdir) forwarding to the same
nginx. The same client drives both proxies in the same run:

1. **rps**: requests/s for one small object (a repeated URL: a cache HIT at the edge)
   through each proxy, ``hey -x`` at fixed concurrency. Every Atlas request is a
   ``/v1/fetch``, provider look-ups and a paid, verified chunk download; mitmdump only
   forwards. CPU time per request of every process is reported next to it.
2. **latency**: p50 of one small object, one request at a time, direct from nginx, through
   mitmdump and through ``atlas proxy``; the added latency is p50 minus the direct p50.
3. **stream**: a 100 MiB download with ``curl -x`` through each proxy (Atlas: cached at
   the origin edge, full replicas at the other two), the file checked by SHA-256.
4. **rss**: peak RSS growth of each proxy process (``/proc/PID/status`` VmHWM after a
   ``clear_refs`` reset, and VmRSS polled every 10 ms) while 1 GiB goes through it (Atlas:
   a URL no edge has seen, so the origin pull is included).

Medians of several repetitions (in rotating order); ``ratio`` = median / reference median.
Usage::

    .venv/bin/python loadtest/bench_proxy.py [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``nginx``, ``curl`` and ``hey`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing. Without ``hey`` the rps part falls back to an
aiohttp client at the same concurrency (named in the report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from bench_edge import (
    ATLAS,
    GB,
    GIB,
    KIB,
    MIB,
    READY_TIMEOUT,
    BenchError,
    Proc,
    Processes,
    Row,
    RssSampler,
    edge_counter,
    filesystem_of,
    free_port,
    make_row,
    proc_status_kib,
    references,
    reset_peak_rss,
    tool_version,
)
from bench_protocol import machine_facts, version_of
from bench_sdk import (
    PASSPHRASE,
    Net,
    Run,
    build_net,
    file_sha256,
    fill_replicas,
    run_timed,
    size_text,
    table,
    uncommitted,
)
from bench_sdk import Config as NetConfig

MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
SMALL = 16 * KIB
"""The small object: one chunk, the size of a typical page asset."""
HIT = 'atlas_edge_fetches_total{cache="HIT"}'
MISS = 'atlas_edge_fetches_total{cache="MISS"}'
SERVED = 'atlas_edge_chunks_total{paid_by="voucher"}'
SERVED_CREDIT = 'atlas_edge_chunks_total{paid_by="credit"}'
ACCEPTED = 'atlas_edge_vouchers_total{outcome="accepted"}'
PARTS = ("rps", "latency", "stream", "rss")
TARGETS = ("atlas", "mitmdump")
PROXY_ENV_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
"""Dropped from the clients' environment: only the ``-x``/``proxy=`` given is used."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    """Repetitions of the rps runs."""
    rps_seconds: float
    """Length of one measured load run."""
    concurrency: int
    """Connections (hey workers) of a load run."""
    latency_requests: int
    """Sequential requests per target and repetition."""
    latency_reps: int
    size: int
    """Bytes of the stream download."""
    stream_reps: int
    rss_size: int
    rss_reps: int


FULL = Config("full", 3, 5.0, 8, 200, 3, 100 * MIB, 5, GIB, 2)
QUICK = Config("quick", 1, 1.0, 4, 20, 1, 8 * MIB, 1, 32 * MIB, 1)


# --- processes ------------------------------------------------------------------------------


def client_env() -> dict[str, str]:
    """The environment of curl and hey: no proxy settings but the ones given explicitly."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_ENV_VARS}


def wait_port(proc: Proc, port: int, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not start:\n{proc.log_tail()}")


def start_proxy(procs: Processes, home: Path) -> tuple[Proc, str]:
    """``atlas proxy`` on free ports with the wallet in ``home``; (process, API URL).

    Spending limits are lifted: at the edges' default price a 1 GiB download costs
    1.024 BTT, over the default ``--max-per-request`` of 1 BTT."""
    env = shutil.which("env") or "/usr/bin/env"  # exec()s the proxy: the PID stays the same
    argv = [env, f"ATLAS_HOME={home}", f"ATLAS_PASSPHRASE={PASSPHRASE}", ATLAS, "proxy"]
    argv += ["--host", "127.0.0.1", "--port", "0", "--api-port", "0"]
    argv += ["--max-per-request", "none", "--max-per-day", "none"]
    proc = procs.start("proxy", argv)
    api = ""
    for line in (procs.workdir / "proxy.out").read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            api = str(json.loads(line).get("api") or api)
    return proc, api


def start_mitmdump(procs: Processes, workdir: Path) -> Proc:
    """Plain ``mitmdump`` forwarding (quiet, streaming every body, confdir of its own)."""
    port = free_port()
    confdir = workdir / "mitmdump-conf"
    confdir.mkdir()
    argv = [MITMDUMP, "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
    argv += ["--set", f"confdir={confdir}", "--set", "stream_large_bodies=1"]
    proc = procs.start("mitmdump", argv, ready_line=False)
    proc.url = f"http://127.0.0.1:{port}"
    try:
        wait_port(proc, port, "mitmdump")
    except BenchError:
        procs.stop(proc)
        raise
    return proc


# --- CPU time of processes ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live children (nginx workers), in seconds."""
    total = 0.0
    for one in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(f"/proc/{one}/stat").read_text(encoding="ascii", errors="replace")
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``, not idle or iowait)."""
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal minus idle and iowait
    return busy / CLK_TCK


def own_cpu_seconds() -> float:
    """This process and its waited-for children (every process it started, once stopped)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the load client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadRun:
    client: str
    responses: int
    seconds: float
    rps: float
    statuses: dict[int, int]
    errors: int
    body_bytes: int
    client_cpu: float


def run_hey(url: str, proxy: str, seconds: float, concurrency: int) -> LoadRun:
    """``hey -z S -c C -x http://PROXY URL`` (keep-alive, one connection per worker), parsed."""
    argv = [shutil.which("hey") or "hey", "-z", f"{seconds:g}s", "-c", str(concurrency)]
    argv += ["-t", "30", "-disable-compression", "-x", proxy, url]
    cpu = child_cpu_seconds()
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
        env=client_env(),
    )
    cpu = child_cpu_seconds() - cpu
    out = result.stdout
    if result.returncode != 0:
        raise BenchError(f"hey exited {result.returncode}: {result.stderr[-1500:]}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    if rps is None or total is None:
        raise BenchError(f"unexpected hey output: {out[-1500:]}")
    data = re.search(r"Total data:\s+(\d+) bytes", out)
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = 0
    if "Error distribution:" in out:
        tail = out.split("Error distribution:", 1)[1]
        errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", tail, re.MULTILINE))
    responses = sum(statuses.values())
    return LoadRun(
        "hey",
        responses,
        float(total[1]),
        float(rps[1]),
        statuses,
        errors,
        int(data[1]) if data else 0,
        cpu,
    )


async def run_aiohttp_load(url: str, proxy: str, seconds: float, concurrency: int) -> LoadRun:
    """The fallback client: ``concurrency`` workers, each GET after the previous answer."""
    statuses: Counter[int] = Counter()
    errors = body = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors, body
            while time.perf_counter() < deadline:
                try:
                    async with session.get(url, proxy=proxy) as response:
                        body += len(await response.read())
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    responses = sum(statuses.values())
    return LoadRun(
        "aiohttp",
        responses,
        elapsed,
        responses / elapsed,
        dict(statuses),
        errors,
        body,
        time.process_time() - cpu,
    )


# --- the bench ------------------------------------------------------------------------------


@dataclass
class Bench:
    cfg: Config
    net: Net
    proxy: Proc
    api: str
    mitm: Proc
    client: str
    """``hey`` or ``aiohttp`` (the rps client)."""
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    cached_id: str = ""
    """Content id of the 100 MiB body the edges hold (filled before the proxy started)."""

    @property
    def small_url(self) -> str:
        return f"{self.net.nginx.url}/small.bin"

    def via(self, target: str) -> str:
        return self.proxy.url if target == "atlas" else self.mitm.url

    def cpu_snapshot(self) -> dict[str, float]:
        named = [
            ("proxy", self.proxy),
            ("mitmdump", self.mitm),
            ("ledger", self.net.ledger),
            ("nginx", self.net.nginx),
            *((e.name, e) for e in self.net.edges),
            *((p.name, p) for p in self.net.procs.running if p.name == "tracker"),
        ]
        return {name: cpu_seconds(p.pid) for name, p in named}

    async def counters(self) -> dict[str, float]:
        session, edges = self.net.session, self.net.edges
        return {
            "hit": await edge_counter(session, edges[0].url, HIT),
            "miss": await edge_counter(session, edges[0].url, MISS),
            "served": sum([await edge_counter(session, e.url, SERVED) for e in edges])
            + sum([await edge_counter(session, e.url, SERVED_CREDIT) for e in edges]),
            "accepted": sum([await edge_counter(session, e.url, ACCEPTED) for e in edges]),
        }


async def get_checked(
    session: aiohttp.ClientSession, url: str, proxy: str | None, digest: str, size: int
) -> dict[str, str]:
    async with session.get(url, proxy=proxy) as response:
        body = await response.read()
        headers = dict(response.headers)
        status = response.status
    if status != 200 or len(body) != size or hashlib.sha256(body).hexdigest() != digest:
        raise BenchError(f"GET {url} via {proxy}: {status}, {len(body)} B, bytes differ")
    return headers


async def check_paths(bench: Bench) -> None:
    """One small GET direct and through each proxy, bytes checked; Atlas must say it carried
    it (``Via: 1.1 atlas`` and a content id). The first Atlas request is the edge's MISS."""
    digest = bench.net.files["small.bin"]
    session = bench.net.session
    await get_checked(session, bench.small_url, None, digest, SMALL)
    await get_checked(session, bench.small_url, bench.mitm.url, digest, SMALL)
    headers = await get_checked(session, bench.small_url, bench.proxy.url, digest, SMALL)
    if headers.get("Via") != "1.1 atlas" or not headers.get("X-Atlas-Content-Id"):
        raise BenchError(f"the proxy's answer did not come through Atlas: {headers}")


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


# --- 3: a 100 MiB download ------------------------------------------------------------------


def curl_via(bench: Bench, target: str | None, name: str, query: str = "") -> tuple[Run, str]:
    """``curl -sS --fail [-x PROXY] -D HEADERS -o FILE URL``, timed; the file is checked
    against nginx's and removed. Returns the run and the response headers."""
    net = bench.net
    net.runs += 1
    output = net.workdir / f"out-{net.runs}.bin"
    head = net.workdir / f"head-{net.runs}.txt"
    argv = [shutil.which("curl") or "curl", "-sS", "--fail", "-o", str(output), "-D", str(head)]
    if target is not None:
        argv += ["-x", bench.via(target)]
    try:
        run = run_timed(
            [*argv, f"{net.nginx.url}/{name}{query}"],
            client_env(),
            net.workdir,
            f"curl-{target or 'direct'}",
            summary=False,
        )
        headers = head.read_text(encoding="latin-1")
        got = file_sha256(output)
    finally:
        output.unlink(missing_ok=True)
        head.unlink(missing_ok=True)
    if got != net.files[name]:
        raise BenchError(f"curl {name}{query} via {target or 'direct'}: the file differs")
    return run, headers


def atlas_headers_check(headers: str, content_id: str | None = None) -> None:
    lower = headers.lower()
    if "via: 1.1 atlas" not in lower:
        raise BenchError("a download through the proxy did not come through Atlas")
    if content_id is not None and f"x-atlas-content-id: {content_id}" not in lower:
        raise BenchError("a cached download through the proxy got other content (not a HIT)")


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
            run, headers = curl_via(bench, None if target == "direct" else target, "body.bin")
        rates[target].append(size / run.seconds / GB)
        if target != "direct":
            cpu[target].append((cpu_seconds(pid) - before) / (size / GB))
        if target == "atlas":
            atlas_headers_check(headers, bench.cached_id)
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
            run, headers = curl_via(bench, target, "big.bin", "?rss")
        peak = max(sampler.peak, proc_status_kib(pid, "VmHWM") if reset_ok else 0)
        growth[target].append((peak - base) / KIB)
        rates[target].append(cfg.rss_size / run.seconds / GB)
        if target == "atlas":
            atlas_headers_check(headers)

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


# --- setup ----------------------------------------------------------------------------------


async def setup(
    cfg: Config, workdir: Path, procs: Processes, session: aiohttp.ClientSession, client: str
) -> Bench:
    """The network of bench_sdk (ledger, nginx, tracker, three paid edges, a wallet with open
    channels), the 100 MiB body cached with full replicas, then the two proxies."""
    net_cfg = NetConfig(cfg.mode, cfg.stream_reps, cfg.size, cfg.rss_size, SMALL, cfg.rss_reps)
    net = await build_net(net_cfg, workdir, procs, session)
    loop = asyncio.get_running_loop()
    # Before the proxy runs (it keeps the channels' issued amounts in memory): the origin edge
    # caches body.bin and edge2/edge3 buy all of it, as bench_sdk's cached runs.
    warm = await loop.run_in_executor(
        None, net.atlas_fetch, f"{net.nginx.url}/body.bin", len(net.edges), "body.bin"
    )
    cached_id = str(warm.summary["content_id"])
    await fill_replicas(net, net.edges[1:], cached_id)
    proxy, api = start_proxy(procs, net.home)
    mitm = start_mitmdump(procs, workdir)
    bench = Bench(cfg, net, proxy, api, mitm, client, cached_id=cached_id)
    await check_paths(bench)
    # The proxy's first download of the cached body (warm-up, not timed), content id checked.
    _, headers = await loop.run_in_executor(None, curl_via, bench, "atlas", "body.bin")
    atlas_headers_check(headers, cached_id)
    return bench


# --- report ---------------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    if unit == "GB/s":
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def render(facts: dict[str, Any], cfg: Config, rows: Sequence[Row], notes: Sequence[str]) -> str:
    header = ("measurement", "median", "unit", "reference median", "ratio", "goal", "met")
    cells = [
        (
            row.operation,
            format_value(row.median, row.unit),
            row.unit,
            format_value(row.reference_median, row.unit),
            f"{row.ratio:.2f}",
            row.goal or "-",
            {True: "yes", False: "NO", None: "-"}[row.met],
        )
        for row in rows
    ]
    changed = facts["uncommitted"]
    return "\n".join(
        [
            "Atlas browser proxy benchmark (loadtest/bench_proxy.py)",
            f"cpu:      {facts['cpu_model']}",
            f"cores:    {facts['cores']} ({facts['usable_cores']} usable)",
            f"python:   {facts['python']} on {facts['platform']}",
            f"date:     {facts['date']}  commit: {facts['git_commit'] or 'unknown'}  "
            f"load average at start: {facts['load_average']:.2f}",
            f"tree:     {len(changed)} tracked files changed since the commit"
            + (f" ({', '.join(changed[:6])}" if changed else "")
            + (", ...)" if len(changed) > 6 else ")" if changed else ""),
            f"disk:     data dirs and output files on {facts['data_dir_filesystem']}",
            f"libs:     mitmproxy {facts['mitmproxy']}, aiohttp {facts['aiohttp']}, "
            f"{facts['nginx']}, {facts['curl']}, rps client {facts['rps_client']}",
            f"mode:     {cfg.mode}, medians of {cfg.reps} (rps), {cfg.latency_reps} (latency), "
            f"{cfg.stream_reps} (stream), {cfg.rss_reps} (rss) repetitions; "
            "ratio = median / reference median",
            "",
            *table(header, cells, left=(0, 2, 5, 6)),
            "",
            "references:",
            *references(rows),
            "",
            "notes:",
            *(f"  {note}" for note in notes),
        ]
    )


def json_row(row: Row) -> dict[str, Any]:
    """The row for ``--json``; a ratio against a zero reference (inf) becomes null."""
    out = asdict(row)
    out["ratio"] = row.ratio if math.isfinite(row.ratio) else None
    return out


def ensure_tools(install: bool) -> str:
    """Installs what is missing (with ``install``); returns the rps client to use."""
    missing = [tool for tool in ("nginx", "curl") if shutil.which(tool) is None]
    wanted = [*missing, "hey"] if install and shutil.which("hey") is None else missing
    if missing and not install:
        raise SystemExit(
            f"bench_proxy needs {' and '.join(missing)} (Debian packages of those names): "
            "apt-get install them, or run with --install-deps"
        )
    if wanted:
        print(f"installing system packages: {' '.join(wanted)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *wanted], check=True, env=env, timeout=600
        )
    return "hey" if shutil.which("hey") else "aiohttp"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--reps", type=int, help="repetitions of the rps and stream runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part ({', '.join(PARTS)}); repeatable",
    )
    parser.add_argument(
        "--client",
        choices=("hey", "aiohttp"),
        help="rps client (default: hey when installed, else aiohttp)",
    )
    parser.add_argument(
        "--install-deps",
        action="store_true",
        help="apt-get install nginx, curl and hey when missing",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlas-bench-proxy-"))
    path.chmod(0o755)  # nginx workers (an unprivileged user) read files below it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


async def run_all(
    cfg: Config, workdir: Path, only: Sequence[str], client: str, outcome: Outcome
) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    try:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.perf_counter()
            try:
                bench = await setup(cfg, workdir, procs, session, client)
            except Exception as exc:
                traceback.print_exc()
                outcome.failed.append("setup")
                outcome.notes.append(f"setup: FAILED: {type(exc).__name__}: {exc}")
                return
            bench.notes, bench.checks = outcome.notes, outcome.checks
            bench.net.notes, bench.net.checks = outcome.notes, outcome.checks
            bench.notes.append(
                "setup: ledger, nginx, a tracker edge and 3 paid edges (--free-mib 0), funds, "
                f"open channels, {size_text(cfg.size)} cached with full replicas, atlas proxy "
                f"(--max-per-request none --max-per-day none) and mitmdump: "
                f"{time.perf_counter() - started:.1f} s"
            )
            parts: dict[str, Callable[[], Awaitable[list[Row]]]] = {
                "rps": lambda: bench_rps(bench),
                "latency": lambda: bench_latency(bench),
                "stream": lambda: bench_stream(bench),
                "rss": lambda: bench_rss(bench),
            }
            for name, part in parts.items():
                if name not in only:
                    continue
                started = time.perf_counter()
                try:
                    outcome.rows += await part()
                except Exception as exc:
                    traceback.print_exc()
                    outcome.failed.append(name)
                    outcome.notes.append(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                outcome.notes.append(f"{name}: took {time.perf_counter() - started:.1f} s")
            with contextlib.suppress(OSError, BenchError):
                outcome.checks["proxy_vm_hwm_mib_at_end"] = (
                    proc_status_kib(bench.proxy.pid, "VmHWM") / KIB
                )
    finally:
        procs.close()
        outcome.notes += [f"WARNING: {line}" for line in procs.bad_exits]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            raise SystemExit("--reps must be at least 1")
        cfg = replace(cfg, reps=args.reps, stream_reps=args.reps, latency_reps=args.reps)
    client = ensure_tools(args.install_deps)
    if args.client == "hey" and client != "hey":
        raise SystemExit("hey is not installed: apt-get install hey, or --install-deps")
    client = args.client or client
    started = time.perf_counter()
    busy, own = system_busy_seconds(), own_cpu_seconds()
    outcome = Outcome()
    with workspace() as workdir:
        facts = {
            **machine_facts(),
            "load_average": os.getloadavg()[0],
            "uncommitted": uncommitted(),
            "data_dir_filesystem": filesystem_of(workdir),
            "mitmproxy": version_of("mitmproxy"),
            "aiohttp": version_of("aiohttp"),
            "nginx": tool_version(["nginx", "-v"]),
            "curl": " ".join(tool_version(["curl", "--version"]).split()[:2]),
            "rps_client": client,
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, client, outcome))
    elapsed = time.perf_counter() - started
    others = (system_busy_seconds() - busy) - (own_cpu_seconds() - own)
    outcome.notes.append(
        f"machine: load average at the end {os.getloadavg()[0]:.2f}; processes not started by "
        f"this benchmark used {max(others, 0.0) / elapsed:.2f} cores on average during the run "
        f"(all cores busy minus this process tree, from /proc/stat and getrusage)"
    )
    print(render(facts, cfg, outcome.rows, outcome.notes))
    print(f"wall time: {elapsed:.1f} s")
    if args.json is not None:
        report = {
            "benchmark": "proxy",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {**facts, "others_cores": max(others, 0.0) / elapsed},
            "config": asdict(cfg),
            "wall_time_s": elapsed,
            "failed": outcome.failed,
            "notes": outcome.notes,
            "checks": outcome.checks,
            "results": [json_row(row) for row in outcome.rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop children on SIGTERM
    raise SystemExit(main())
