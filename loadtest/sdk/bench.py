"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

A ledger, nginx (the origin and the reference), a tracker and three paid edges, all
children on 127.0.0.1: ``atlas fetch`` of a new and of a cached URL from 1, 2 and 3 edges
against curl from nginx (fetch), and the peak RSS of ``atlas
fetch`` for a big file against a 1 MiB one (rss). loadtest/README.md lists the rows.
Needs nginx and curl (``--install-deps``).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from loadtest.harness.bench_main import Bench, Run, client_session
from loadtest.harness.children import BenchError, Timed
from loadtest.harness.network import EDGES, Net, build_net
from loadtest.harness.procfs import RSS_POLL
from loadtest.harness.rows import CHUNK, GB, MIB, Row, make_row, rates, rotated, size_text

SETUPS = ("first3", "cached1", "cached2", "cached3")
"""Atlas downloads of one repetition: a first fetch from 3 edges, cached from 1, 2, 3."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    size: int  # bytes of the fetch and scaling downloads
    rss_size: int
    rss_small: int  # bytes of the RSS reference download (the fixed cost of the process)
    rss_reps: int


FULL = Config("full", 5, 100 * MIB, 1024 * MIB, MIB, 2)
QUICK = Config("quick", 1, 8 * MIB, 32 * MIB, MIB, 1)


async def bench_fetch(net: Net, cfg: Config, run: Run[Config]) -> list[Row]:
    size = cfg.size
    # Warm-up (not timed): the origin edge caches the URL, the others get full replicas,
    # and the interpreter, the files and nginx are warm.
    cached_id = await net.cache("body.bin")
    await asyncio.to_thread(net.curl, "body.bin")
    runs: dict[str, list[Timed]] = {setup: [] for setup in SETUPS}
    curls: list[float] = []
    ids = {cached_id}

    def first(rep: int) -> None:
        got = net.atlas_fetch(f"{net.nginx.url}/body.bin?first={rep}", EDGES, "body.bin")
        if got.summary["content_id"] in ids:
            raise BenchError("a first fetch was answered from the cache")
        ids.add(got.summary["content_id"])
        runs["first3"].append(got)

    def cached(edges: int) -> Callable[[int], None]:
        def go(_rep: int) -> None:
            got = net.atlas_fetch(f"{net.nginx.url}/body.bin", edges, "body.bin")
            if got.summary["content_id"] != cached_id:
                raise BenchError("a cached fetch got new content (not a cache HIT)")
            if set(got.summary["providers"]) != {e.url for e in net.edges[:edges]}:
                raise BenchError(f"--edge x{edges} used {list(got.summary['providers'])}")
            runs[f"cached{edges}"].append(got)

        return go

    before = net.counters()
    for rep, step in rotated(cfg.reps, [lambda _: curls.append(net.curl("body.bin").seconds),
                                        first, cached(1), cached(2), cached(3)]):  # fmt: skip
        await asyncio.to_thread(step, rep)
    counted = net.counters(since=before)
    hits, misses = counted["hit"], counted["miss"]
    run.checks["fetch"] = {"origin_edge_hits": hits, "origin_edge_misses": misses}
    if hits != 3 * cfg.reps or misses != cfg.reps:
        raise BenchError(f"origin edge counted {hits} HIT and {misses} MISS fetches")
    text, count = size_text(size), -(-size // CHUNK)
    outside = [r.seconds - float(r.summary["seconds"]) for done in runs.values() for r in done]
    run.notes += [
        f"fetch: {text} = {count} chunks of 256 KiB, random bytes (no zstd), paid at the "
        "edges' default price (0.001 BTT per MiB); time = wall time of the whole command "
        "(interpreter start and imports, wallet unlock, /v1/fetch, chunks, fsync, rename); "
        "the file is checked against nginx's after every run; curl does not fsync",
        f"fetch: fixed cost per command (interpreter start and imports, wallet unlock): wall "
        f"time minus the summary's 'seconds' is {statistics.median(outside):.2f} s (median)",
    ]
    direct = rates(size, curls, GB)
    reference = f"curl -o FILE, same {text} file straight from nginx"
    return [
        make_row(f"fetch_{setup[:-1]}_{setup[-1]}", f"atlas fetch {text}, {label}", "GB/s",
                 rates(size, [r.seconds for r in runs[setup]], GB), reference, direct,
                 *(("ratio >= 0.50", lambda _m, ratio: ratio >= 0.5) if goal else ()))
        for setup, label, goal in (
            ("first3", "3 edges, first fetch (origin pull included)", True),
            ("cached3", "3 edges, cached (HIT + full replicas)", True),
            ("cached1", "1 edge, cached", False),
            ("cached2", "2 edges, cached", False),
        )
    ]  # fmt: skip


async def bench_rss(net: Net, cfg: Config, run: Run[Config]) -> list[Row]:
    """Peak RSS of ``atlas fetch`` for the big file, and for a small one."""
    rates: list[float] = []
    peaks: dict[str, list[float]] = {"big.bin": [], "small.bin": []}
    for rep, name in rotated(cfg.rss_reps, ("big.bin", "small.bin")):
        url = f"{net.nginx.url}/{name}?rss={rep}"
        got = await asyncio.to_thread(net.atlas_fetch, url, EDGES, name)
        peaks[name].append(got.peak_rss_kib / 1024)
        if name == "big.bin":
            rates.append(cfg.rss_size / got.seconds / GB)
    text, big = size_text(cfg.rss_size), peaks["big.bin"]
    run.notes.append(
        f"rss: atlas fetch of {text} from 3 edges, first fetch (origin pull included); peak = "
        f"max of VmHWM and VmRSS polled every {RSS_POLL * 1000:.0f} ms; per rep MiB: "
        f"{', '.join(f'{b:.1f}' for b in big)}; {text} at "
        f"{', '.join(f'{r:.3f}' for r in rates)} GB/s wall"
    )
    run.checks["rss"] = {"bytes": cfg.rss_size}
    return [
        make_row("fetch_peak_rss", f"atlas fetch {text}: peak RSS of the process", "MiB", big,
                 f"the same command fetching {size_text(cfg.rss_small)} (fixed cost)",
                 peaks["small.bin"], "< 100 MiB", lambda _m, _r: max(big) < 100)
    ]  # fmt: skip


async def measure(run: Run[Config]) -> None:
    cfg = run.cfg
    sizes = {"body.bin": cfg.size, "big.bin": cfg.rss_size, "small.bin": cfg.rss_small}
    async with client_session() as session:
        net = await build_net(sizes, run.workdir, run.procs, session)
        await run.parts({"fetch": lambda: bench_fetch(net, cfg, run),
                         "rss": lambda: bench_rss(net, cfg, run)})  # fmt: skip


SPEC = Bench(
    "sdk", "Atlas requester benchmark (python -m loadtest run sdk)", __doc__, FULL, QUICK,
    lambda cfg: f"medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) repetitions; "
    "ratio = median / reference median", measure, ("fetch", "rss"),
    reps_help="repetitions of the fetch runs", tools=("nginx", "curl"),
    libs=("aiohttp", "zstandard"),
)  # fmt: skip
