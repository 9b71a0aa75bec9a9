"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

Real processes on 127.0.0.1, all children of this one: a ledger with faucet, nginx (the
origin, and the reference), a tracker and three paid edges (``--free-mib 0``). Each
measurement is compared with a reference taken in the same run:

1. **fetch**: a 100 MiB paid, verified download with ``atlas fetch URL -o FILE --json``
   (wall time of the whole command) from three edges, against ``curl -o FILE`` reading the
   same file from nginx. Measured twice: *first* (a new URL, so the origin edge pulls the
   body from nginx while the client downloads and the other two edges replicate from it:
   origin fetch included) and *cached* (a URL the edges hold: an nginx ``Cache-Control:
   max-age`` response, a cache HIT at the origin edge, full replicas at the others).
2. **scaling**: the cached download with ``--edge`` lists of 1, 2 and 3 edges, with the
   chunks each provider served (from the ``--json`` summary).
3. **rss**: peak RSS of the ``atlas fetch`` process (``/proc/PID/status`` VmHWM and VmRSS
   polled every 10 ms) downloading 1 GiB; reference: the same command downloading 1 MiB.

Medians of several repetitions (in rotating order); ``ratio`` = median / reference
median. Usage::

    .venv/bin/python loadtest/bench_sdk.py [--quick] [--reps N] [--json PATH] [--install-deps]

Needs ``nginx`` and ``curl`` (Debian packages of those names); ``--install-deps``
installs them with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from bench_edge import (
    ATLAS,
    CHUNK,
    GB,
    GIB,
    KIB,
    MIB,
    READY_TIMEOUT,
    BenchError,
    Proc,
    Processes,
    Row,
    _die_with_parent,
    blob_range,
    edge_counter,
    filesystem_of,
    free_port,
    make_row,
    references,
    tool_version,
)
from bench_protocol import machine_facts, version_of

from requester import keystore
from requester.channel_manager import ChannelManager, DepositPolicy
from requester.chunk_client import Budget, ChunkClient
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import (
    BTT_LOCAL,
    ContentVerifier,
    ManifestHead,
    TronAddress,
    b64url_decode,
)
from requester.protocol.manifest import MAX_HEAD_BYTES, SEAL_SIZE
from requester.settings import write_config

PASSPHRASE = "bench-sdk-passphrase"
WALLET_FUNDS = 1000 * BTT_LOCAL.one
"""The faucet's largest grant; the requester's wallet gets it once."""
EDGE_FUNDS = 200 * BTT_LOCAL.one
"""Each edge's payee account: edges pay the origin edge for the chunks they replicate."""
CHANNEL_DEPOSIT = 250 * BTT_LOCAL.one
"""Per edge, opened before the timed runs (a full run spends ~2 BTT per edge at most)."""
EDGES = 3
RSS_POLL = 0.01
FETCH_TIMEOUT = 300.0
WARM_WORKERS = 4
"""Chunk requests in flight while filling an edge's replica (setup, not timed)."""
HIT = 'atlas_edge_fetches_total{cache="HIT"}'
SERVED = 'atlas_edge_chunks_total{paid_by="voucher"}'
MISS = 'atlas_edge_fetches_total{cache="MISS"}'
PARTS = ("fetch", "rss")
SETUPS = ("first3", "cached1", "cached2", "cached3")
"""Atlas downloads of one repetition: a first fetch from 3 edges, cached from 1, 2, 3."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    size: int
    """Bytes of the fetch and scaling downloads."""
    rss_size: int
    rss_small: int
    """Bytes of the RSS reference download (the fixed cost of the process)."""
    rss_reps: int


FULL = Config("full", 5, 100 * MIB, GIB, MIB, 2)
QUICK = Config("quick", 1, 8 * MIB, 32 * MIB, MIB, 1)


def size_text(size: int) -> str:
    return f"{size // GIB} GiB" if size >= GIB and size % GIB == 0 else f"{size // MIB} MiB"


# --- nginx: the origin and the reference ------------------------------------------------------

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    default_type application/octet-stream;
    types {{ }}
    client_body_temp_path {root}/tmp-body;
    proxy_temp_path {root}/tmp-proxy;
    fastcgi_temp_path {root}/tmp-fastcgi;
    uwsgi_temp_path {root}/tmp-uwsgi;
    scgi_temp_path {root}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        # Cache-Control: max-age=3600, so a second /v1/fetch of a URL is a cache HIT
        location / {{ expires 1h; }}
    }}
}}
"""


def start_nginx(procs: Processes, root: Path) -> Proc:
    """nginx (one worker, sendfile) on a free loopback port serving ``root/www``."""
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port), encoding="utf-8")
    for path in [root, *root.rglob("*")]:  # workers run as an unprivileged user under root
        path.chmod(0o755 if path.is_dir() else 0o644)
    nginx = shutil.which("nginx") or "nginx"
    proc = procs.start(
        "nginx",
        [nginx, "-e", str(root / "nginx-error.log"), "-p", str(root), "-c", str(conf)],
        ready_line=False,
    )
    proc.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc
        time.sleep(0.05)
    procs.stop(proc)
    error_log = (root / "nginx-error.log").read_text(encoding="utf-8", errors="replace")
    raise BenchError(f"nginx did not start:\n{proc.log_tail()}\n{error_log[-2000:]}")


def write_blob(path: Path, size: int, salt: int) -> str:
    """``size`` bytes of blob ``salt`` (every 256 KiB chunk distinct) to ``path``; its SHA-256."""
    digest = hashlib.sha256()
    step = 4 * MIB
    with path.open("wb") as out:
        for offset in range(0, size, step):
            piece = blob_range(offset, min(step, size - offset), salt)
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(4 * MIB):
            digest.update(piece)
    return digest.hexdigest()


# --- one timed command ------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = int(value.split()[0])
    return out


class PeakRss:
    """Polls VmHWM and VmRSS of ``pid`` in a thread; ``peak`` is the largest seen (KiB).

    VmHWM is the kernel's own high-water mark, so a peak between two polls is not missed
    unless it falls in the last 10 ms before the process exits."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = proc_status(self.pid)
            except (OSError, ValueError):
                return  # exited (or a zombie without memory)
            self.peak = max(self.peak, *status.values(), 0)
            self.polls += 1
            self._stop.wait(RSS_POLL)


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    """Wall time of the command, from spawn to exit."""
    peak_rss_kib: int
    summary: dict[str, Any]
    """``atlas fetch --json`` output ({} for curl)."""


def run_timed(
    argv: Sequence[str], env: dict[str, str], workdir: Path, name: str, *, summary: bool = True
) -> Run:
    """Run one command to completion, timed, its peak RSS polled; raise if it fails.
    With ``summary``, its stdout (if any) is JSON: ``atlas fetch --json``'s summary."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        popen = subprocess.Popen(
            list(argv),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (it only calls prctl)
        )
        sampler = PeakRss(popen.pid)
        try:
            code = popen.wait(FETCH_TIMEOUT)
            seconds = time.perf_counter() - started
        except subprocess.TimeoutExpired:
            popen.kill()  # our own child, by its PID
            popen.wait()
            raise BenchError(f"{name}: did not finish in {FETCH_TIMEOUT:.0f} s") from None
        finally:
            peak = sampler.stop()
    text = out.read_text(encoding="utf-8", errors="replace")
    problem = err.read_text(encoding="utf-8", errors="replace")
    out.unlink(missing_ok=True)
    err.unlink(missing_ok=True)
    if code != 0:
        raise BenchError(f"{name}: {argv[0]} exited {code}: {problem[-1500:]}")
    return Run(seconds, peak, json.loads(text) if summary and text.strip() else {})


# --- the network ------------------------------------------------------------------------------


@dataclass
class Net:
    cfg: Config
    workdir: Path
    procs: Processes
    session: aiohttp.ClientSession
    ledger: Proc
    nginx: Proc
    edges: list[Proc]
    home: Path
    files: dict[str, str] = field(default_factory=dict)
    """nginx file name -> SHA-256 of its bytes."""
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, list[str]] = field(default_factory=dict)
    """Extra tables printed after the main one (the scaling table)."""
    runs: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "ATLAS_HOME": str(self.home), "ATLAS_PASSPHRASE": PASSPHRASE}

    def names(self) -> dict[str, str]:
        return {e.url: f"edge{i}" for i, e in enumerate(self.edges, 1)}

    def atlas_fetch(self, url: str, edges: int, expect: str) -> Run:
        """``atlas fetch URL -o FILE --json --edge ...`` (the first ``edges`` edges), timed;
        the file is checked against nginx's and removed."""
        self.runs += 1
        output = self.workdir / f"out-{self.runs}.bin"
        argv = [ATLAS, "fetch", url, "-o", str(output), "--json"]
        for edge in self.edges[:edges]:
            argv += ["--edge", edge.url]
        try:
            run = run_timed(argv, self.env, self.workdir, f"fetch-{self.runs}")
            got = file_sha256(output)
        finally:
            for path in (output, output.with_name(output.name + ".part")):
                path.unlink(missing_ok=True)
            output.with_name(output.name + ".atlas").unlink(missing_ok=True)
        if got != self.files[expect]:
            raise BenchError(f"atlas fetch {url}: the file differs from nginx's {expect}")
        summary = run.summary
        if summary.get("status") != 200 or summary.get("dropped"):
            raise BenchError(f"atlas fetch {url}: {summary}")
        return run

    def curl(self, name: str) -> Run:
        self.runs += 1
        output = self.workdir / f"out-{self.runs}.bin"
        argv = [shutil.which("curl") or "curl", "-sS", "--fail", "-o", str(output)]
        try:
            run = run_timed(
                [*argv, f"{self.nginx.url}/{name}"], dict(os.environ), self.workdir, "curl"
            )
            got = file_sha256(output)
        finally:
            output.unlink(missing_ok=True)
        if got != self.files[name]:
            raise BenchError(f"curl {name}: the file differs")
        return run

    async def counter(self, edge: Proc, metric: str) -> int:
        return int(await edge_counter(self.session, edge.url, metric))


async def payee_of(session: aiohttp.ClientSession, edge: str) -> TronAddress:
    async with session.get(f"{edge}/v1/info") as response:
        return TronAddress.parse((await response.json())["payee"])


@contextlib.asynccontextmanager
async def wallet(net: Net) -> AsyncIterator[ChannelManager]:
    """The requester's channel manager, from the same ATLAS_HOME as ``atlas fetch`` (used
    only while no ``atlas fetch`` runs: it reloads the issued amounts from the store)."""
    keys = keystore.load(net.home / "wallet.json", PASSPHRASE)
    store = PayerStore(net.home / "state.sqlite3")
    try:
        yield ChannelManager(
            keys.payer, store, LedgerClient(net.ledger.url, net.session), DepositPolicy()
        )
    finally:
        store.close()


async def build_net(
    cfg: Config, workdir: Path, procs: Processes, session: aiohttp.ClientSession
) -> Net:
    """Ledger, nginx with the files, a tracker, three paid edges; funds; a wallet whose
    channels to the three edges are open (as ``atlas channel open`` would)."""
    ledger = procs.ledger()
    www = workdir / "nginx" / "www"
    www.mkdir(parents=True)
    files = {
        "body.bin": write_blob(www / "body.bin", cfg.size, 1),
        "big.bin": write_blob(www / "big.bin", cfg.rss_size, 2),
        "small.bin": write_blob(www / "small.bin", cfg.rss_small, 3),
    }
    nginx = start_nginx(procs, workdir / "nginx")
    # The tracker is an edge of its own that serves nothing, so a client given k edges finds
    # exactly those k as providers (an edge's tracker lists only what was announced to it).
    tracker = procs.edge("tracker", ledger.url, "--free-mib", "0")
    edges = [
        procs.edge(f"edge{i}", ledger.url, "--free-mib", "0", "--tracker", tracker.url)
        for i in range(1, EDGES + 1)
    ]
    ledger_client = LedgerClient(ledger.url, session)
    payees = [await payee_of(session, e.url) for e in edges]
    for payee in payees:
        await ledger_client.faucet(payee, EDGE_FUNDS)
    home = workdir / "home"
    keys = keystore.create(home / "wallet.json", PASSPHRASE, fast=True)
    write_config(home, [e.url for e in edges], ledger.url)
    await ledger_client.faucet(keys.payer.address, WALLET_FUNDS)
    net = Net(cfg, workdir, procs, session, ledger, nginx, edges, home, files)
    async with wallet(net) as manager:
        for payee in payees:
            await manager.open_channel(payee, CHANNEL_DEPOSIT, int(time.time()))
    return net


async def fill_replicas(net: Net, edges: Sequence[Proc], content_id: str) -> None:
    """Buy every chunk of ``content_id`` from each of ``edges`` (with the SDK's ChunkClient),
    so they replicate all of it from the origin edge; checks that they then hold it all."""
    async with net.session.get(f"{net.edges[0].url}/v1/content/{content_id}") as response:
        info = await response.json()
    if not info.get("seal"):
        raise BenchError(f"{content_id} is not sealed at the origin edge")
    verifier = ContentVerifier(
        ManifestHead.decode(b64url_decode(info["head"], MAX_HEAD_BYTES, "head"))
    )
    verifier.accept_seal(b64url_decode(info["seal"], SEAL_SIZE, "seal"))
    assert verifier.seal is not None
    count = verifier.seal.chunk_count
    async with wallet(net) as manager:
        client = ChunkClient(net.session, Budget(manager, None))

        async def fill(edge: Proc) -> None:
            indexes = iter(range(count))

            async def worker() -> None:
                for index in indexes:
                    await client.get(edge.url, verifier, index)

            await asyncio.gather(*(worker() for _ in range(WARM_WORKERS)))

        await asyncio.gather(*(fill(edge) for edge in edges))
    for edge in edges:
        async with net.session.get(f"{edge.url}/v1/content/{content_id}") as response:
            held = (await response.json())["chunks_available"]
        if held != count:
            raise BenchError(f"{edge.name} holds {held} of {count} chunks after the warm-up")


# --- 1 and 2: throughput and scaling ----------------------------------------------------------


@dataclass
class FetchSamples:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SETUPS})
    inner: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SETUPS})
    """The summary's ``seconds`` (inside the process: no interpreter start, no wallet unlock)."""
    chunks: dict[str, list[dict[str, int]]] = field(default_factory=lambda: {s: [] for s in SETUPS})
    rss: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in SETUPS})
    curl: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    """Wall time of ``atlas fetch --help``: interpreter start and imports."""


async def bench_fetch(net: Net) -> list[Row]:
    cfg, size = net.cfg, net.cfg.size
    cached_url = f"{net.nginx.url}/body.bin?cached"
    loop = asyncio.get_running_loop()

    def fetch(url: str, edges: int) -> Run:
        return net.atlas_fetch(url, edges, "body.bin")

    # Warm-up (not timed): the origin edge caches the URL, the others get full replicas,
    # and the interpreter, the files and nginx are warm.
    started = time.perf_counter()
    warm = await loop.run_in_executor(None, fetch, cached_url, EDGES)
    cached_id = str(warm.summary["content_id"])
    await fill_replicas(net, net.edges[1:], cached_id)
    await loop.run_in_executor(None, net.curl, "body.bin")

    net.notes.append(
        f"fetch: warm-up (origin edge caches the URL, edge2 and edge3 replicate all "
        f"{-(-size // CHUNK)} chunks) took {time.perf_counter() - started:.1f} s"
    )

    samples = FetchSamples()
    ids: set[str] = {cached_id}
    hits_before = await net.counter(net.edges[0], HIT)
    misses_before = await net.counter(net.edges[0], MISS)
    served_before = [await net.counter(edge, SERVED) for edge in net.edges]
    names = net.names()

    def record(setup: str, run: Run) -> None:
        samples.seconds[setup].append(run.seconds)
        samples.inner[setup].append(float(run.summary["seconds"]))
        samples.rss[setup].append(run.peak_rss_kib)
        providers = run.summary["providers"]
        samples.chunks[setup].append(
            {names.get(url, url): int(p["chunks"]) for url, p in providers.items()}
        )

    for rep in range(cfg.reps):

        def first(rep: int = rep) -> None:
            run = fetch(f"{net.nginx.url}/body.bin?first={rep}", EDGES)
            if run.summary["content_id"] in ids:
                raise BenchError("a first fetch was answered from the cache")
            ids.add(run.summary["content_id"])
            record("first3", run)

        def cached(edges: int) -> Callable[[], None]:
            def go() -> None:
                run = fetch(cached_url, edges)
                if run.summary["content_id"] != cached_id:
                    raise BenchError("a cached fetch got new content (not a cache HIT)")
                if set(run.summary["providers"]) != {e.url for e in net.edges[:edges]}:
                    raise BenchError(f"--edge x{edges} used {list(run.summary['providers'])}")
                record(f"cached{edges}", run)

            return go

        def curl() -> None:
            samples.curl.append(net.curl("body.bin").seconds)

        def startup() -> None:
            argv = [ATLAS, "fetch", "--help"]
            run = run_timed(argv, net.env, net.workdir, "help", summary=False)
            samples.startup.append(run.seconds)

        steps = [curl, first, cached(1), cached(2), cached(3), startup]
        shift = rep % len(steps)
        for step in [*steps[shift:], *steps[:shift]]:
            await loop.run_in_executor(None, step)

    hits = await net.counter(net.edges[0], HIT) - hits_before
    misses = await net.counter(net.edges[0], MISS) - misses_before
    served = sum([await net.counter(e, SERVED) for e in net.edges]) - sum(served_before)
    to_client = sum(sum(c.values()) for runs in samples.chunks.values() for c in runs)
    idle = sum(1 for runs in samples.chunks.values() for c in runs for n in c.values() if not n)
    net.checks["fetch"] = {
        "bytes": size,
        "origin_edge_hits": hits,
        "origin_edge_misses": misses,
        "chunks_to_clients": to_client,
        "chunks_edge_to_edge": served - to_client,
        "idle_providers": idle,
        "startup_seconds": samples.startup,
        "chunks_per_provider": samples.chunks,
        "inner_seconds": samples.inner,
        "peak_rss_kib": samples.rss,
    }
    if hits != 3 * cfg.reps or misses != cfg.reps:
        raise BenchError(f"origin edge counted {hits} HIT and {misses} MISS fetches")
    return fetch_rows(net, samples)


def fetch_rows(net: Net, samples: FetchSamples) -> list[Row]:
    size = net.cfg.size
    text = size_text(size)
    count = -(-size // CHUNK)

    def rate(seconds: list[float]) -> list[float]:
        return [size / s / GB for s in seconds]

    curl = rate(samples.curl)
    reference = f"curl -o FILE, same {text} file straight from nginx"
    goal = "ratio >= 0.50"
    rows = [
        make_row(
            "fetch_first_3",
            f"atlas fetch {text}, 3 edges, first fetch (origin pull included)",
            "GB/s",
            rate(samples.seconds["first3"]),
            reference,
            curl,
            goal,
            lambda _m, ratio: ratio >= 0.5,
        ),
        make_row(
            "fetch_cached_3",
            f"atlas fetch {text}, 3 edges, cached (HIT + full replicas)",
            "GB/s",
            rate(samples.seconds["cached3"]),
            reference,
            curl,
            goal,
            lambda _m, ratio: ratio >= 0.5,
        ),
    ]
    for edges in (1, 2):
        rows.append(
            make_row(
                f"fetch_cached_{edges}",
                f"atlas fetch {text}, {edges} edge{'s' if edges > 1 else ''}, cached",
                "GB/s",
                rate(samples.seconds[f"cached{edges}"]),
                reference,
                curl,
            )
        )
    net.notes.append(
        f"fetch: {text} = {count} chunks of 256 KiB, random bytes (no zstd), paid at the "
        "edges' default price (0.001 BTT per MiB); time = wall time of the whole command "
        "(interpreter start and imports, wallet unlock, /v1/fetch, chunks, fsync, rename); "
        "the file is checked against nginx's after every run; curl does not fsync"
    )
    checks = net.checks["fetch"]
    net.notes.append(
        f"fetch: edges served {checks['chunks_edge_to_edge'] / len(samples.seconds['first3']):.0f}"
        f" chunks to each other per first fetch of {count} (replication with read-ahead; "
        "the cached runs need none)"
        + (
            f"; WARNING: {checks['idle_providers']} provider(s) served nothing"
            if checks["idle_providers"]
            else ""
        )
    )
    outside = [
        wall - inner
        for setup in SETUPS
        for wall, inner in zip(samples.seconds[setup], samples.inner[setup], strict=True)
    ]
    net.notes.append(
        f"fetch: fixed cost per command: `atlas fetch --help` (interpreter start and imports) "
        f"takes {statistics.median(samples.startup):.2f} s; wall time minus the summary's "
        f"'seconds' is {statistics.median(outside):.2f} s (medians)"
    )
    net.sections["scaling"] = scaling_table(samples, rate, statistics.median(curl))
    return rows


def scaling_table(
    samples: FetchSamples, rate: Callable[[list[float]], list[float]], curl: float
) -> list[str]:
    """Throughput by provider count (medians), and the chunks each provider served."""
    one = statistics.median(rate(samples.seconds["cached1"]))
    header: tuple[str, ...] = (
        "download", "wall GB/s", "vs 1 edge", "vs curl", "in-process GB/s", "peak RSS",
        "chunks per provider: median [min-max] over reps",
    )  # fmt: skip
    cells = []
    for setup in ("cached1", "cached2", "cached3", "first3"):
        wall = statistics.median(rate(samples.seconds[setup]))
        inner = statistics.median(rate(samples.inner[setup]))
        names = sorted({name for counts in samples.chunks[setup] for name in counts})
        per_provider = ", ".join(
            f"{name} {statistics.median(c.get(name, 0) for c in samples.chunks[setup]):.0f} "
            f"[{min(c.get(name, 0) for c in samples.chunks[setup])}-"
            f"{max(c.get(name, 0) for c in samples.chunks[setup])}]"
            for name in names
        )
        label = "first fetch, 3 edges" if setup == "first3" else f"cached, {setup[-1]} edge(s)"
        rss = statistics.median(samples.rss[setup]) / KIB
        cells.append(
            (
                label,
                f"{wall:.3f}",
                f"{wall / one:.2f}x",
                f"{wall / curl:.2f}",
                f"{inner:.3f}",
                f"{rss:.0f} MiB",
                per_provider,
            )
        )
    return table(header, cells, left=(0, 6))


def table(header: Sequence[str], cells: Sequence[Sequence[str]], left: Sequence[int]) -> list[str]:
    """Aligned columns: ``left`` ones are left-justified, the others right-justified."""
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(c) for c in cells)]


# --- 3: peak RSS of atlas fetch ---------------------------------------------------------------


async def bench_rss(net: Net) -> list[Row]:
    cfg, loop = net.cfg, asyncio.get_running_loop()
    big, small, rates = [], [], []
    for rep in range(cfg.rss_reps):

        def run_big(rep: int = rep) -> Run:
            return net.atlas_fetch(f"{net.nginx.url}/big.bin?rss={rep}", EDGES, "big.bin")

        def run_small(rep: int = rep) -> Run:
            return net.atlas_fetch(f"{net.nginx.url}/small.bin?rss={rep}", EDGES, "small.bin")

        order = [run_big, run_small] if rep % 2 == 0 else [run_small, run_big]
        for step in order:
            run = await loop.run_in_executor(None, step)
            if step is run_big:
                big.append(run.peak_rss_kib / KIB)
                rates.append(cfg.rss_size / run.seconds / GB)
                net.checks.setdefault("rss_chunks_per_provider", []).append(
                    {
                        net.names().get(u, u): p["chunks"]
                        for u, p in run.summary["providers"].items()
                    }
                )
            else:
                small.append(run.peak_rss_kib / KIB)
    text = size_text(cfg.rss_size)
    net.notes.append(
        f"rss: atlas fetch of {text} from 3 edges, first fetch (origin pull included); peak = "
        f"max of VmHWM and VmRSS polled every {RSS_POLL * 1000:.0f} ms; per rep MiB: "
        + ", ".join(f"{b:.1f}" for b in big)
        + f"; {text} at "
        + ", ".join(f"{r:.3f}" for r in rates)
        + " GB/s wall"
    )
    net.checks["rss"] = {"bytes": cfg.rss_size, "peak_mib": big, "reference_peak_mib": small}
    return [
        make_row(
            "fetch_peak_rss",
            f"atlas fetch {text}: peak RSS of the process",
            "MiB",
            big,
            f"the same command fetching {size_text(cfg.rss_small)} (fixed cost)",
            small,
            "< 100 MiB",
            lambda _m, _r: max(big) < 100,
        )
    ]


# --- report -----------------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    return f"{value:,.1f}" if unit == "MiB" else f"{value:.3f}"


def render(
    facts: dict[str, Any],
    cfg: Config,
    rows: Sequence[Row],
    notes: Sequence[str],
    sections: dict[str, list[str]],
) -> str:
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
    out = [
        "Atlas requester benchmark (loadtest/bench_sdk.py)",
        f"cpu:      {facts['cpu_model']}",
        f"cores:    {facts['cores']} ({facts['usable_cores']} usable)",
        f"python:   {facts['python']} on {facts['platform']}",
        f"date:     {facts['date']}  commit: {facts['git_commit'] or 'unknown'}  "
        f"load average at start: {facts['load_average']:.2f}",
        f"tree:     {len(facts['uncommitted'])} tracked files changed since the commit"
        + (f" ({', '.join(facts['uncommitted'][:6])}" if facts["uncommitted"] else "")
        + (", ...)" if len(facts["uncommitted"]) > 6 else ")" if facts["uncommitted"] else ""),
        f"disk:     data dirs and output files on {facts['data_dir_filesystem']}",
        f"libs:     aiohttp {facts['aiohttp']}, zstandard {facts['zstandard']}, "
        f"{facts['nginx']}, {facts['curl']}",
        f"mode:     {cfg.mode}, medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) "
        "repetitions; ratio = median / reference median",
        "",
        *table(header, cells, left=(0, 2, 5, 6)),
    ]
    for title, lines in sections.items():
        out += ["", f"{title}:", *(f"  {line}" for line in lines)]
    out += [
        "",
        "references:",
        *references(rows),
        "",
        "notes:",
        *(f"  {note}" for note in notes),
    ]
    return "\n".join(out)


def uncommitted() -> list[str]:
    """Tracked files with uncommitted changes (the numbers are for this tree, not the commit)."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in result.stdout.splitlines() if line[3:]]


def ensure_tools(install: bool) -> None:
    missing = [tool for tool in ("nginx", "curl") if shutil.which(tool) is None]
    if not missing:
        return
    if not install:
        raise SystemExit(
            f"bench_sdk needs {' and '.join(missing)} (Debian packages of those names): "
            "apt-get install them, or run with --install-deps"
        )
    print(f"installing system packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, timeout=600)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--reps", type=int, help="repetitions of the fetch runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part ({', '.join(PARTS)}); repeatable",
    )
    parser.add_argument(
        "--install-deps", action="store_true", help="apt-get install nginx and curl when missing"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlas-bench-sdk-"))
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
    sections: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


async def run_all(cfg: Config, workdir: Path, only: Sequence[str], outcome: Outcome) -> None:
    """Every part, each in its own try: one failing part does not hide the others."""
    procs = Processes(workdir)
    try:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.perf_counter()
            try:
                net = await build_net(cfg, workdir, procs, session)
            except Exception as exc:
                traceback.print_exc()
                outcome.failed.append("setup")
                outcome.notes.append(f"setup: FAILED: {type(exc).__name__}: {exc}")
                return
            net.notes, net.checks, net.sections = outcome.notes, outcome.checks, outcome.sections
            net.notes.append(
                f"setup: ledger, nginx, a tracker edge and {EDGES} paid edges "
                f"(--free-mib 0, --tracker), funds and open channels: "
                f"{time.perf_counter() - started:.1f} s"
            )
            parts: dict[str, Callable[[], Any]] = {
                "fetch": lambda: bench_fetch(net),
                "rss": lambda: bench_rss(net),
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
    finally:
        procs.close()
        outcome.notes += [f"WARNING: {line}" for line in procs.bad_exits]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            raise SystemExit("--reps must be at least 1")
        cfg = replace(cfg, reps=args.reps)
    ensure_tools(args.install_deps)
    started = time.perf_counter()
    outcome = Outcome()
    with workspace() as workdir:
        facts = {
            **machine_facts(),
            "load_average": os.getloadavg()[0],
            "uncommitted": uncommitted(),
            "data_dir_filesystem": filesystem_of(workdir),
            "aiohttp": version_of("aiohttp"),
            "zstandard": version_of("zstandard"),
            "nginx": tool_version(["nginx", "-v"]),
            "curl": " ".join(tool_version(["curl", "--version"]).split()[:2]),
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, outcome))
        used = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
        outcome.notes.append(f"disk: {used / GIB:.1f} GiB in the temporary directory at the end")
    elapsed = time.perf_counter() - started
    outcome.notes.append(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(render(facts, cfg, outcome.rows, outcome.notes, outcome.sections))
    print(f"wall time: {elapsed:.1f} s")
    if args.json is not None:
        report = {
            "benchmark": "sdk",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": facts,
            "config": asdict(cfg),
            "wall_time_s": elapsed,
            "failed": outcome.failed,
            "notes": outcome.notes,
            "checks": outcome.checks,
            "sections": outcome.sections,
            "results": [asdict(row) for row in outcome.rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop children on SIGTERM
    raise SystemExit(main())
