"""The two proxies under test on the network of the SDK benchmark, and what every part shares."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness.bench_main import Run
from loadtest.harness.blobs import file_sha256
from loadtest.harness.children import ATLAS, BenchError, Proc, Processes, free_port, wait_port
from loadtest.harness.edge_api import edge_counter
from loadtest.harness.procfs import cpu_seconds
from loadtest.harness.rows import GIB, KIB, MIB
from loadtest.sdk.network import PASSPHRASE, Net, build_net, fill_replicas
from loadtest.sdk.network import Config as NetConfig

MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
SMALL = 16 * KIB  # the small object: one chunk, the size of a typical page asset
COUNTERS = {
    "hit": ['atlas_edge_fetches_total{cache="HIT"}'],
    "miss": ['atlas_edge_fetches_total{cache="MISS"}'],
    "served": [f'atlas_edge_chunks_total{{paid_by="{by}"}}' for by in ("voucher", "credit")],
    "accepted": ['atlas_edge_vouchers_total{outcome="accepted"}'],
}
"""What ``ProxyBench.counters`` sums: hit and miss at the origin edge, the others at every edge."""
PARTS = ("rps", "latency", "stream", "rss", "sizes")
TARGETS = ("atlas", "mitmdump")
CURL_TIMEOUT = 300.0
PROXY_ENV_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
"""Dropped from the clients' environment: only the ``-x``/``proxy=`` given is used."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int  # repetitions of the rps runs
    rps_seconds: float
    concurrency: int  # hey workers (one connection each)
    latency_requests: int  # sequential requests per target and repetition
    latency_reps: int
    size: int  # bytes of the stream download
    stream_reps: int
    rss_size: int
    rss_reps: int
    sizes: tuple[int, ...]
    sizes_reps: int


FULL = Config(
    "full", 3, 5.0, 8, 200, 3, 100 * MIB, 5, GIB, 2,
    (16 * KIB, 256 * KIB, MIB, 4 * MIB, 16 * MIB, 64 * MIB), 3
)  # fmt: skip
QUICK = Config("quick", 1, 1.0, 4, 20, 1, 8 * MIB, 1, 32 * MIB, 1, (16 * KIB, MIB), 1)


def client_env() -> dict[str, str]:
    """The environment of curl and hey: no proxy settings but the ones given explicitly."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_ENV_VARS}


def start_proxy(procs: Processes, home: Path) -> Proc:
    """``atlas proxy`` on free ports with the wallet in ``home``, spending limits lifted (at the
    edges' default price 1 GiB costs 1.024 BTT, over the default 1 BTT per request)."""
    env = shutil.which("env") or "/usr/bin/env"  # exec()s the proxy: the PID stays the same
    argv = [env, f"ATLAS_HOME={home}", f"ATLAS_PASSPHRASE={PASSPHRASE}", ATLAS, "proxy"]
    argv += ["--host", "127.0.0.1", "--port", "0", "--api-port", "0"]
    return procs.start("proxy", [*argv, "--max-per-request", "none", "--max-per-day", "none"])


def start_mitmdump(procs: Processes, workdir: Path) -> Proc:
    """Plain ``mitmdump`` forwarding (quiet, streaming every body, confdir of its own)."""
    port = free_port()
    confdir = workdir / "mitmdump-conf"
    confdir.mkdir()
    argv = [MITMDUMP, "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
    argv += ["--set", f"confdir={confdir}", "--set", "stream_large_bodies=1"]
    proc = procs.start("mitmdump", argv, ready_line=False)
    proc.url = f"http://127.0.0.1:{port}"
    wait_port(proc, port, "mitmdump")  # on failure, the run's close stops it
    return proc


@dataclass
class ProxyBench:
    cfg: Config
    net: Net
    proxy: Proc
    mitm: Proc
    cached_id: str
    """Content id of the 100 MiB body the edges hold (filled before the proxy started)."""
    notes: list[str]
    checks: dict[str, Any]

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

    async def counters(self, since: dict[str, float] | None = None) -> dict[str, float]:
        """The COUNTERS now, or their growth ``since`` an earlier reading."""
        out = {}
        for key, metrics in COUNTERS.items():
            edges = self.net.edges[:1] if key in ("hit", "miss") else self.net.edges
            out[key] = sum([await edge_counter(self.net.session, e.url, m)
                            for m in metrics for e in edges])  # fmt: skip
        return {k: v - since[k] for k, v in out.items()} if since else out


async def get_checked(
    session: aiohttp.ClientSession, url: str, proxy: str | None, digest: str, size: int
) -> None:
    async with session.get(url, proxy=proxy) as response:
        body = await response.read()
    if response.status != 200 or len(body) != size or hashlib.sha256(body).hexdigest() != digest:
        raise BenchError(f"GET {url} via {proxy}: {response.status}, {len(body)} B, bytes differ")


@dataclass(frozen=True, slots=True)
class CurlRun:
    seconds: float
    """curl's own ``time_total`` (name lookup to last byte: curl's start-up is left out)."""
    content_id: str  # the ``X-Atlas-Content-Id`` answered, if any


def curl_via(
    bench: ProxyBench, target: str | None, name: str, query: str = "", content_id: str = ""
) -> CurlRun:
    """``curl -sS --fail [-x PROXY] -D HEADERS -o FILE URL``, timed by curl; the file is checked
    against nginx's and removed; through atlas proxy, ``Via`` and (if given) ``content_id`` too."""
    net = bench.net
    net.runs += 1
    output = net.workdir / f"out-{net.runs}.bin"
    head = net.workdir / f"head-{net.runs}.txt"
    argv = [shutil.which("curl") or "curl", "-sS", "--fail", "-o", str(output), "-D", str(head)]
    argv += ["-w", "%{time_total}", *(["-x", bench.via(target)] if target else [])]
    where = f"curl {name}{query} via {target or 'direct'}"
    try:
        done = subprocess.run(
            [*argv, f"{net.nginx.url}/{name}{query}"],
            env=client_env(),
            cwd=net.workdir,
            capture_output=True,
            timeout=CURL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"{where}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
        headers = head.read_text(encoding="latin-1").lower()
        got = file_sha256(output)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{where}: did not finish in {CURL_TIMEOUT:.0f} s") from None
    finally:
        output.unlink(missing_ok=True)
        head.unlink(missing_ok=True)
    if got != net.files[name]:
        raise BenchError(f"{where}: the file differs")
    if target == "atlas" and "via: 1.1 atlas" not in headers:
        raise BenchError(f"{where}: the download did not come through Atlas")
    if target == "atlas" and content_id and f"x-atlas-content-id: {content_id}" not in headers:
        raise BenchError(f"{where}: other content than {content_id} (not a HIT)")
    found = re.search(r"^x-atlas-content-id: *(\S+)", headers, re.MULTILINE)
    return CurlRun(float(done.stdout), found[1] if found else "")


async def setup(run: Run[Config], session: aiohttp.ClientSession) -> ProxyBench:
    """The SDK benchmark's network, the 100 MiB body cached with full replicas, then the two
    proxies; one small GET direct and through each proxy, bytes checked."""
    cfg, workdir, procs = run.cfg, run.workdir, run.procs
    net_cfg = NetConfig(cfg.mode, cfg.stream_reps, cfg.size, cfg.rss_size, SMALL, cfg.rss_reps)
    net = await build_net(net_cfg, workdir, procs, session)
    loop = asyncio.get_running_loop()
    # Before the proxy runs (it keeps the channels' issued amounts in memory): the origin edge
    # caches body.bin and edge2/edge3 buy all of it, as the SDK benchmark's cached runs.
    warm = await loop.run_in_executor(
        None, net.atlas_fetch, f"{net.nginx.url}/body.bin", len(net.edges), "body.bin"
    )
    cached_id = str(warm.summary["content_id"])
    await fill_replicas(net, net.edges[1:], cached_id)
    proxy, mitm = start_proxy(procs, net.home), start_mitmdump(procs, workdir)
    bench = ProxyBench(cfg, net, proxy, mitm, cached_id, run.notes, run.checks)
    small = net.files["small.bin"]
    for via in (None, mitm.url, proxy.url):
        await get_checked(session, bench.small_url, via, small, SMALL)
    # The proxy's first download of the cached body (warm-up, not timed): Via, content id checked.
    await loop.run_in_executor(None, curl_via, bench, "atlas", "body.bin", "", cached_id)
    return bench
