"""Torrent benchmark: ``atlas fetch MAGNET --file PATH`` through a fresh free edge against a
plain libtorrent client, both fed by one local seeder; ``loadtest/README.md`` says what each
row measures and how the clocks work. Both parts run one after the other in this thread
(each waits on its child processes), one seeder each, unthrottled or limited; every
repetition on a fresh edge, stopped at its end. The timeline under the table gives each
client's events from its spawn (issue 18 hunts the first-piece stall in it)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from loadtest.harness.bench_main import Bench, Option, Run
from loadtest.harness.blobs import file_sha256
from loadtest.harness.children import BenchError, Proc
from loadtest.harness.network import edge_counter
from loadtest.harness.rows import GIB, KIB, MIB, Row, make_row, size_text, table
from loadtest.torrent.clients import ChildRun, Clients, edge_settings, start_seeder

PARTS = ("unlimited", "limited")
METHODS = ("plain", "first", "cached")
TIMELINE_HEADER = (
    "run", "ready", "asked", "head", "first byte", ".part byte", "last byte", "exit",
    "in-process MiB/s", "CPU s client/edge/seeder"
)  # fmt: skip
NAMES = {"plain": "plain libtorrent", "first": "atlas fetch, first", "cached": "atlas, cached"}
ATLAS_KEYS = ("imported", "open", "opened", "first_chunk", "last_chunk")
KEYS = {"plain": ("imported", "asked", "metadata", "first_piece", "finished")}
"""The stamps of each column from ready to last byte (plain client, else ``atlas fetch``)."""
CPU_OF = ("client", "edge", "seeder")


def first_byte_ms(run: ChildRun) -> float:
    """Asked → first byte in hand: ``add_torrent`` → first piece of the file verified (plain),
    ``AtlasClient.open`` → first verified chunk (atlas fetch)."""
    first, asked = (
        ("first_piece", "asked") if "first_piece" in run.stamps else ("first_chunk", "open")
    )
    return (float(run.stamps[first]) - float(run.stamps[asked])) * 1000


def rate(size: int, runs: list[ChildRun]) -> list[float]:
    """MiB/s from the spawn to completion: the torrent finished (plain: its session's
    teardown after that took 0.1-0.7 s), or the command's exit (atlas fetch: the file is
    fsynced and renamed)."""
    return [size / (r.since_spawn("finished") if "finished" in r.stamps else r.run.seconds) / MIB
            for r in runs]  # fmt: skip


def rows_of(part: str, limited: str, size: int, runs: dict[str, list[ChildRun]]) -> list[Row]:
    """First byte and throughput of the first fetch (with goals) and, if run, of the cached
    one, each against the plain client; ``limited`` names the seeder's cap (or is empty)."""
    text, plain, client = size_text(size), runs["plain"], f"plain libtorrent client{limited}"
    prefix = "torrent" if part == "unlimited" else "torrent_limited"
    rows = []
    first = ", limited, first fetch" if limited else ", first fetch"
    for method, id_, what in (("first", "", first), ("cached", "_cached", ", cached (edge HIT)")):
        if not runs[method]:
            continue
        goals = method == "first"
        rows += [
            make_row(f"{prefix}{id_}_first_byte", f"atlas fetch {text} magnet{what}: open() → "
                     "first chunk", "ms", [first_byte_ms(r) for r in runs[method]],
                     f"{client}: add_torrent → first piece of the file verified (sequential "
                     "download)", [first_byte_ms(r) for r in plain],
                     *(("ratio <= 1.20", lambda _m, ratio: ratio <= 1.2) if goals else ())),
            make_row(f"{prefix}{id_}_throughput", f"atlas fetch {text} magnet{what}: size / wall "
                     "time", "MiB/s", rate(size, runs[method]), f"{client}: size / (spawn → "
                     "torrent finished)", rate(size, plain),
                     *(("ratio >= 0.80", lambda _m, ratio: ratio >= 0.8) if goals else ())),
        ]  # fmt: skip
    return rows


def timeline_cells(part: str, size: int, runs: dict[str, list[ChildRun]]) -> list[tuple[str, ...]]:
    """Medians, in seconds from the spawn: imports done, content asked for, metadata or
    signed head, first byte in hand, first byte in OUT.part, last byte, process exit."""

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.3f}" if values else "-"

    cells: list[tuple[str, ...]] = []
    for method, done in ((m, r) for m, r in runs.items() if r):
        keys = KEYS.get(method, ATLAS_KEYS)
        ready, asked, head, first, last = (med([r.since_spawn(k) for r in done]) for k in keys)
        part_byte = [r.run.first_byte - r.run.spawned for r in done if r.run.first_byte]
        inner = statistics.median(size / (r.stamps[keys[4]] - r.stamps[keys[1]]) / MIB
                                  for r in done)  # fmt: skip
        cpu = "/".join(med([r.cpu[k] for r in done if k in r.cpu]) for k in CPU_OF)
        cells.append((f"{part}: {NAMES[method]}", ready, asked, head, first, med(part_byte), last,
                      med([r.run.seconds for r in done]), f"{inner:.1f}", cpu))  # fmt: skip
    return cells


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    size: int
    piece_size: int
    reps: int
    limited_reps: int
    limit: int  # bytes/s of the rate-limited seeder (its per-torrent upload limit)


FULL = Config("full", 200 * MIB, 256 * KIB, 4, 2, 20 * MIB)
"""Even repetition counts: each client goes first equally often. About 3 minutes on 2 cores."""
QUICK = Config("quick", 8 * MIB, 256 * KIB, 1, 1, 16 * MIB)


@dataclass
class TorrentBench:
    """What both parts share: the run, its ledger and the edge's libtorrent settings."""

    run: Run[Config]
    ledger: Proc
    settings: dict[str, Any]
    timelines: list[tuple[str, ...]] = field(default_factory=list)
    """The timeline table's cells, each part's rows in turn."""


def run_part(bench: TorrentBench, part: str) -> list[Row]:
    """One seeder (capped for ``limited``) and its repetitions, each on a fresh edge; its rows
    (and timeline cells)."""
    cfg, procs, cached = bench.run.cfg, bench.run.procs, part == "unlimited"
    limit, reps = (0, cfg.reps) if cached else (cfg.limit, cfg.limited_reps)
    seeder = start_seeder(procs, f"seeder-{part}", cfg.size, cfg.piece_size, limit)
    runs: dict[str, list[ChildRun]] = {m: [] for m in METHODS}
    summaries: list[dict[str, Any]] = []
    try:
        clients = Clients(procs.workdir, seeder, bench.settings, file_sha256(seeder.path))
        # Untimed. A fresh seeder answers its first peer late (about 1 s for the first piece
        # when rate-limited), and checks each piece's hash the first time it sends it (seed
        # mode): unthrottled, a whole download absorbs both; limited, the first piece.
        clients.plain(warm_up=not cached)

        def atlas(edge: Proc) -> None:
            for method in ("first", "cached") if cached else ("first",):
                cache = "MISS" if method == "first" else "HIT"
                metric = f'atlas_edge_fetches_total{{cache="{cache}"}}'
                counted = edge_counter(edge.url, metric)
                run, summary = clients.atlas(edge)
                if edge_counter(edge.url, metric) != counted + 1:
                    raise BenchError(f"{part}: {method} atlas fetch: no {cache} at the edge")
                runs[method].append(run)
                summaries.append({"method": method, "edge": edge.name, **summary})
            if len({s["content_id"] for s in summaries if s["edge"] == edge.name}) != 1:
                raise BenchError(f"{part}: the cached fetch got other content than the first")

        for rep in range(reps):
            # A fresh free edge (--free-mib 4096): empty store, its own libtorrent session.
            edge = procs.edge(f"edge-{part}-{rep}", bench.ledger.url, "--free-mib", "4096")
            try:
                steps: list[Callable[[], None]] = [
                    lambda: runs["plain"].append(clients.plain()),
                    partial(atlas, edge),
                ]
                for step in steps if rep % 2 == 0 else steps[::-1]:
                    step()
            finally:
                procs.stop(edge)
                shutil.rmtree(procs.workdir / edge.name, ignore_errors=True)
    finally:
        procs.stop(seeder.proc)
        shutil.rmtree(procs.workdir / seeder.proc.name, ignore_errors=True)
    bench.run.checks[part] = {
        "reps": reps,
        "bytes": seeder.size,
        "runs": {m: [r.timeline() for r in done] for m, done in runs.items() if done},
        "summaries": summaries,
    }
    out_of_order = [int(r.stamps["out_of_order"]) for r in runs["plain"]]
    limited = f", seeder limited to {limit / MIB:g} MiB/s" if limit else ""
    bench.run.notes.append(
        f"{part}: {size_text(seeder.size)} single-file hybrid torrent, "
        f"{-(-seeder.size // cfg.piece_size)} pieces of {cfg.piece_size // KIB} KiB"
        + (f", seeder upload limit {limit / MIB:g} MiB/s (per torrent)" if limit else "")
        + f"; plain client: pieces verified before the file's first one: {out_of_order}"
    )
    bench.run.notes.append(f"{part}: {cpu_note(seeder.size, runs)}")
    bench.timelines += timeline_cells(part, seeder.size, runs)
    return rows_of(part, limited, seeder.size, runs)


def cpu_note(size: int, runs: dict[str, list[ChildRun]]) -> str:
    """CPU seconds per GiB of each process (medians), and each method's CPU floor: all its
    processes' CPU over the usable cores, against its wall time. A wall time near its floor
    means the run was bound by CPU (issue 18: which process to make cheaper)."""
    cores, parts = len(os.sched_getaffinity(0)), []
    for method, done in ((m, r) for m, r in runs.items() if r):
        per = {k: statistics.median(r.cpu[k] for r in done) * GIB / size
               for k in CPU_OF if all(k in r.cpu for r in done)}  # fmt: skip
        total = statistics.median(sum(r.cpu.values()) for r in done)
        wall = statistics.median(r.run.seconds for r in done)
        each = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        parts.append(f"{NAMES[method]}: {each} (floor {total / cores:.2f} s, wall {wall:.2f} s)")
    return f"CPU s per GiB, medians, floor = all CPU / {cores} cores: " + "; ".join(parts)


async def measure(run: Run[Config]) -> None:
    settings = edge_settings(run.workdir)
    run.notes.append(
        f"libtorrent settings: the plain client gets the edge's TorrentSession pack "
        f"({json.dumps(settings)}); the seeder runs with DHT, LSD, UPnP and NAT-PMP off on "
        "127.0.0.1; peers found only through the magnet's x.pe"
    )
    bench = TorrentBench(run, run.procs.ledger(), settings)
    await run.parts({name: partial(run_part, bench, name) for name in PARTS})
    if bench.timelines:
        run.sections["timeline (medians, seconds from the spawn)"] = table(
            TIMELINE_HEADER, bench.timelines, left=(0, 9)
        )


SPEC = Bench(
    "torrent", "Atlas torrent benchmark (python -m loadtest run torrent)", __doc__, FULL, QUICK,
    lambda c: f"{c.size // MIB} MiB, medians of {c.reps} (unlimited) and {c.limited_reps} "
    "(limited) repetitions; edges free (--free-mib 4096); ratio = median / reference median",
    measure, PARTS, reps_fields=("reps", "limited_reps"), libs=("libtorrent", "aiohttp"),
    options=(Option("--limit-mib", "limit", "the limited seeder's upload in MiB/s (default 20)",
                    0.001, scale=MIB),),
)  # fmt: skip
