"""End-to-end benchmark of the requester (``atlas fetch``), run by ``make bench``.

A ledger, nginx (the origin and the reference), a tracker and five paid edges, all
children on 127.0.0.1: ``atlas fetch`` of a new URL from 3 edges and of a cached one from
1, 2, 3 and 5 edges against curl from nginx, with the CPU seconds per GiB of the client and
the serving edges against curl's and nginx's (fetch), and the peak RSS of ``atlas fetch``
for a big file against a 1 MiB one (rss). loadtest/README.md lists the rows.
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
from loadtest.harness.procfs import RSS_POLL, cpu_clock
from loadtest.harness.rows import GB, GIB, MIB, Row, make_row, rates, rotated, size_text
from requester.protocol.manifest import chunk_size_for

SCALING = (1, 2, 3, 5)
"""Edge counts of the cached downloads (the throughput-by-edges plot); the last is the net's."""
SETUPS = ("first3", *(f"cached{k}" for k in SCALING))
"""Atlas downloads of one repetition: a first fetch from 3 edges, cached from each SCALING."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    size: int  # bytes of the fetch and scaling downloads
    rss_size: int
    rss_small: int  # bytes of the RSS reference download (the fixed cost of the process)
    rss_reps: int


RSS_GOAL_MIB = 50
"""Issue 18's goal for ``atlas fetch``'s peak RSS during 1 GiB: no worse than 50 MiB."""
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
    cpu: dict[str, list[float]] = {"client": [], "edges": [], "curl": [], "nginx": []}
    ids = {cached_id}

    def curl(_rep: int) -> None:
        clock = cpu_clock({"nginx": net.nginx.pid})
        got = net.curl("body.bin")
        curls.append(got.seconds)
        cpu["curl"].append(got.cpu)
        cpu["nginx"].append(clock()["nginx"])

    def first(rep: int) -> None:
        got = net.atlas_fetch(f"{net.nginx.url}/body.bin?first={rep}", EDGES, "body.bin")
        if got.summary["content_id"] in ids:
            raise BenchError("a first fetch was answered from the cache")
        ids.add(got.summary["content_id"])
        runs["first3"].append(got)

    def cached(edges: int) -> Callable[[int], None]:
        def go(_rep: int) -> None:
            clock = cpu_clock({e.name: e.pid for e in net.edges[:edges]})
            got = net.atlas_fetch(f"{net.nginx.url}/body.bin", edges, "body.bin")
            served = clock()  # the serving edges' CPU over the download
            if edges == EDGES:
                cpu["client"].append(got.cpu)
                cpu["edges"].append(sum(served.values()))
            if got.summary["content_id"] != cached_id:
                raise BenchError("a cached fetch got new content (not a cache HIT)")
            if set(got.summary["providers"]) != {e.url for e in net.edges[:edges]}:
                raise BenchError(f"--edge x{edges} used {list(got.summary['providers'])}")
            runs[f"cached{edges}"].append(got)

        return go

    before = net.counters()
    for rep, step in rotated(cfg.reps, [curl, first, *(cached(k) for k in SCALING)]):
        await asyncio.to_thread(step, rep)
    counted = net.counters(since=before)
    hits, misses = counted["hit"], counted["miss"]
    run.checks["fetch"] = {"origin_edge_hits": hits, "origin_edge_misses": misses}
    if hits != len(SCALING) * cfg.reps or misses != cfg.reps:
        raise BenchError(f"origin edge counted {hits} HIT and {misses} MISS fetches")
    chunk = chunk_size_for(size)  # what the origin edge cuts a body of this size in
    text, count = size_text(size), -(-size // chunk)
    outside = [r.seconds - float(r.summary["seconds"]) for done in runs.values() for r in done]
    run.notes += [
        f"fetch: {text} = {count} chunks of {size_text(chunk)}, random bytes (no zstd), paid "
        "at the "
        "edges' default price (0.001 BTT per MiB); time = wall time of the whole command "
        "(interpreter start and imports, wallet unlock, /v1/fetch, chunks, fsync, rename); "
        "the file is checked against nginx's after every run; curl does not fsync",
        f"fetch: fixed cost per command (interpreter start and imports, wallet unlock): wall "
        f"time minus the summary's 'seconds' is {statistics.median(outside):.2f} s (median)",
    ]
    direct = rates(size, curls, GB)
    reference = f"curl -o FILE, same {text} file straight from nginx"
    run.checks["edges"] = {
        "edges": list(SCALING), "unit": "GB/s", "bytes": size, "curl": statistics.median(direct),
        "median": [statistics.median(rates(size, [r.seconds for r in runs[f"cached{k}"]], GB))
                   for k in SCALING],
    }  # fmt: skip
    fetches = [
        make_row(f"fetch_{setup[:-1]}_{setup[-1]}", f"atlas fetch {text}, {label}", "GB/s",
                 rates(size, [r.seconds for r in runs[setup]], GB), reference, direct,
                 *(("ratio >= 0.50", lambda _m, ratio: ratio >= 0.5) if goal else ()))
        for setup, label, goal in (
            ("first3", "3 edges, first fetch (origin pull included)", True),
            ("cached3", "3 edges, cached (HIT + full replicas)", True),
            ("cached1", "1 edge, cached", False),
            ("cached2", "2 edges, cached", False),
            ("cached5", "5 edges, cached", False),
        )
    ]  # fmt: skip
    return [*fetches, cpu_row(cpu, size, run)]


CPU_GOAL = 8.58
"""Issue 18: half of the 17.16 s/GiB this row measured before the bulk path (1e78247,
2026-12-05 04:08, the day's first make bench)."""


def cpu_row(cpu: dict[str, list[float]], size: int, run: Run[Config]) -> Row:
    """CPU seconds per GiB delivered: the ``atlas fetch`` process (getrusage of the reaped
    child, interpreter start included) plus the serving edges (``/proc``) over each cached
    3-edge download, against curl's plus nginx's over each curl download."""
    gib, text = size / GIB, size_text(size)
    per = {who: [s / gib for s in seconds] for who, seconds in cpu.items()}
    medians = ", ".join(f"{who} {statistics.median(v):.2f}" for who, v in per.items())
    run.notes.append(
        f"cpu: CPU s per GiB, medians: {medians} (client = the whole atlas "
        f"fetch process, {text} a download; edges = the 3 serving edges)"
    )
    atlas = [a + b for a, b in zip(per["client"], per["edges"], strict=True)]
    direct = [a + b for a, b in zip(per["curl"], per["nginx"], strict=True)]
    return make_row("cpu_per_gib_cached_3",
                    f"CPU seconds per GiB delivered, client + serving edges (atlas fetch "
                    f"{text}, 3 cached edges)", "s/GiB", atlas,
                    f"curl + nginx CPU seconds per GiB, curl -o FILE of the same {text} file",
                    direct, f"<= {CPU_GOAL:g} s/GiB",
                    lambda median, _r: median <= CPU_GOAL)  # fmt: skip


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
                 peaks["small.bin"], "<= 50 MiB", lambda _m, _r: max(big) <= RSS_GOAL_MIB)
    ]  # fmt: skip


async def measure(run: Run[Config]) -> None:
    cfg = run.cfg
    sizes = {"body.bin": cfg.size, "big.bin": cfg.rss_size, "small.bin": cfg.rss_small}
    async with client_session() as session:
        net = await build_net(sizes, run.workdir, run.procs, session, edges=SCALING[-1])
        await run.parts({"fetch": lambda: bench_fetch(net, cfg, run),
                         "rss": lambda: bench_rss(net, cfg, run)})  # fmt: skip


SPEC = Bench(
    "sdk", "Atlas requester benchmark (python -m loadtest run sdk)", __doc__, FULL, QUICK,
    lambda cfg: f"medians of {cfg.reps} (fetch), {cfg.rss_reps} (rss) repetitions; "
    "ratio = median / reference median", measure, ("fetch", "rss"),
    reps_help="repetitions of the fetch runs", tools=("nginx", "curl"),
    libs=("aiohttp", "zstandard"),
)  # fmt: skip
