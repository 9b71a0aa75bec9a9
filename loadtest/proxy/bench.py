"""End-to-end benchmark of the browser proxy (``atlas proxy``) against plain ``mitmdump``
on the harness's network of paid edges; ``loadtest/README.md`` says what each row
measures. This module holds what the parts (small.py, downloads.py) share: the
configuration, the two proxies and a checked curl through either."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness.bench_main import Bench, Run, client_session
from loadtest.harness.children import ATLAS, BenchError, Proc, Processes, free_port
from loadtest.harness.network import PASSPHRASE, Net, build_net
from loadtest.harness.rows import GIB, KIB, MIB

MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
SMALL = 16 * KIB  # the small object: one chunk, the size of a typical page asset
PARTS = ("rps", "latency", "stream", "rss", "sizes")
TARGETS = ("atlas", "mitmdump")


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
    return procs.start("mitmdump", argv, port=port)


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

    def curl(
        self, target: str | None, name: str, query: str = "", content_id: str = ""
    ) -> tuple[float, str]:
        """``curl -x PROXY`` (``target``: atlas or mitmdump; None: straight to nginx) of nginx's
        ``name``: the seconds curl timed (name lookup to last byte, so its start-up is left out)
        and the content id answered; the file is checked, through Atlas ``Via`` and (if given)
        ``content_id`` too."""
        proxy = ["-x", self.via(target)] if target else []
        run = self.net.curl(name, "-D", "-", "-w", "\n%{time_total}", *proxy, query=query)
        headers, _, seconds = run.stdout.strip().lower().rpartition("\n")
        where = f"curl {name}{query} via {target}"
        if target == "atlas" and "via: 1.1 atlas" not in headers:
            raise BenchError(f"{where}: the download did not come through Atlas")
        if target == "atlas" and content_id and f"x-atlas-content-id: {content_id}" not in headers:
            raise BenchError(f"{where}: other content than {content_id} (not a HIT)")
        found = re.search(r"^x-atlas-content-id: *(\S+)", headers, re.MULTILINE)
        return float(seconds), found[1] if found else ""


async def get_checked(
    session: aiohttp.ClientSession, url: str, proxy: str | None, digest: str, size: int
) -> None:
    async with session.get(url, proxy=proxy) as response:
        body = await response.read()
    if response.status != 200 or len(body) != size or hashlib.sha256(body).hexdigest() != digest:
        raise BenchError(f"GET {url} via {proxy}: {response.status}, {len(body)} B, bytes differ")


async def setup(run: Run[Config], session: aiohttp.ClientSession) -> ProxyBench:
    """The harness's paid network, the 100 MiB body cached with full replicas, then the two
    proxies; one small GET direct and through each proxy, bytes checked."""
    cfg, workdir, procs = run.cfg, run.workdir, run.procs
    sizes = {"body.bin": cfg.size, "big.bin": cfg.rss_size, "small.bin": SMALL}
    net = await build_net(sizes, workdir, procs, session)
    # Before the proxy runs (it keeps the channels' issued amounts in memory): the origin edge
    # caches body.bin and edge2/edge3 buy all of it, as the SDK benchmark's cached runs.
    cached_id = await net.cache("body.bin")
    proxy, mitm = start_proxy(procs, net.home), start_mitmdump(procs, workdir)
    bench = ProxyBench(cfg, net, proxy, mitm, cached_id, run.notes, run.checks)
    for via in (None, mitm.url, proxy.url):
        await get_checked(session, bench.small_url, via, net.files["small.bin"], SMALL)
    # The proxy's first download of the cached body (warm-up, not timed): Via, content id checked.
    await asyncio.to_thread(bench.curl, "atlas", "body.bin", "", cached_id)
    return bench


async def measure(run: Run[Config]) -> None:
    from loadtest.proxy.downloads import bench_rss, bench_sizes, bench_stream  # they import us
    from loadtest.proxy.small import bench_latency, bench_rps

    async with client_session() as session:
        bench = await setup(run, session)
        await run.parts({"rps": lambda: bench_rps(bench), "latency": lambda: bench_latency(bench),
                         "stream": lambda: bench_stream(bench), "rss": lambda: bench_rss(bench),
                         "sizes": lambda: bench_sizes(bench)})  # fmt: skip


SPEC = Bench(
    "proxy", "Atlas browser proxy benchmark (python -m loadtest run proxy)", __doc__, FULL,
    QUICK, lambda c: f"medians of {c.reps} (rps), {c.latency_reps} (latency), {c.stream_reps} "
    f"(stream), {c.rss_reps} (rss), {c.sizes_reps} (sizes) repetitions; ratio = median / "
    "reference median", measure, PARTS,
    reps_fields=("reps", "stream_reps", "latency_reps", "sizes_reps"),
    reps_help="repetitions of the rps and stream runs", tools=("nginx", "curl", "hey"),
    libs=("mitmproxy", "aiohttp"),
)  # fmt: skip
