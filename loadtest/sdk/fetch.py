"""Parts 1 and 2, fetch and scaling: ``atlas fetch`` against curl, with 1, 2 and 3 edges."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loadtest.harness.children import ATLAS, BenchError
from loadtest.harness.rows import CHUNK, GB, KIB, Row, make_row, rates, size_text, table
from loadtest.sdk.network import EDGES, Net, Run, fill_replicas, run_timed

HIT = 'atlas_edge_fetches_total{cache="HIT"}'
SERVED = 'atlas_edge_chunks_total{paid_by="voucher"}'
MISS = 'atlas_edge_fetches_total{cache="MISS"}'
SETUPS = ("first3", "cached1", "cached2", "cached3")
"""Atlas downloads of one repetition: a first fetch from 3 edges, cached from 1, 2, 3."""


@dataclass
class FetchSamples:
    size: int
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

    samples = FetchSamples(size)
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
        "bytes": size, "origin_edge_hits": hits, "origin_edge_misses": misses,
        "chunks_to_clients": to_client, "chunks_edge_to_edge": served - to_client,
        "idle_providers": idle, "startup_seconds": samples.startup,
        "chunks_per_provider": samples.chunks, "inner_seconds": samples.inner,
        "peak_rss_kib": samples.rss,
    }  # fmt: skip
    if hits != 3 * cfg.reps or misses != cfg.reps:
        raise BenchError(f"origin edge counted {hits} HIT and {misses} MISS fetches")
    return fetch_rows(net, samples)


def fetch_rows(net: Net, samples: FetchSamples) -> list[Row]:
    size = net.cfg.size
    text, count = size_text(size), -(-size // CHUNK)
    curl = rates(size, samples.curl, GB)
    reference = f"curl -o FILE, same {text} file straight from nginx"
    rows = [
        make_row(f"fetch_{setup[:-1]}_{setup[-1]}", f"atlas fetch {text}, {label}", "GB/s",
                 rates(size, samples.seconds[setup], GB), reference, curl,
                 *(("ratio >= 0.50", lambda _m, ratio: ratio >= 0.5) if goal else ()))
        for setup, label, goal in (
            ("first3", "3 edges, first fetch (origin pull included)", True),
            ("cached3", "3 edges, cached (HIT + full replicas)", True),
            ("cached1", "1 edge, cached", False),
            ("cached2", "2 edges, cached", False),
        )
    ]  # fmt: skip
    checks = net.checks["fetch"]
    idle = checks["idle_providers"]
    outside = [
        wall - inner
        for setup in SETUPS
        for wall, inner in zip(samples.seconds[setup], samples.inner[setup], strict=True)
    ]
    net.notes += [
        f"fetch: {text} = {count} chunks of 256 KiB, random bytes (no zstd), paid at the "
        "edges' default price (0.001 BTT per MiB); time = wall time of the whole command "
        "(interpreter start and imports, wallet unlock, /v1/fetch, chunks, fsync, rename); "
        "the file is checked against nginx's after every run; curl does not fsync",
        f"fetch: edges served {checks['chunks_edge_to_edge'] / len(samples.seconds['first3']):.0f}"
        f" chunks to each other per first fetch of {count} (replication with read-ahead; "
        "the cached runs need none)"
        + (f"; WARNING: {idle} provider(s) served nothing" if idle else ""),
        f"fetch: fixed cost per command: `atlas fetch --help` (interpreter start and imports) "
        f"takes {statistics.median(samples.startup):.2f} s; wall time minus the summary's "
        f"'seconds' is {statistics.median(outside):.2f} s (medians)",
    ]
    net.sections["scaling"] = scaling_table(samples, statistics.median(curl))
    return rows


def scaling_table(samples: FetchSamples, curl: float) -> list[str]:
    """Throughput by provider count (medians), and the chunks each provider served."""

    def rate(seconds: list[float]) -> list[float]:
        return rates(samples.size, seconds, GB)

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
        cells.append((label, f"{wall:.3f}", f"{wall / one:.2f}x", f"{wall / curl:.2f}",
                      f"{inner:.3f}", f"{rss:.0f} MiB", per_provider))  # fmt: skip
    return table(header, cells, left=(0, 6))
