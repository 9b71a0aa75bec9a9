"""The two parts of the torrent benchmark: one seeder each, unthrottled or limited; every
repetition on a fresh edge, stopped at its end (``loadtest/README.md`` says the order)."""

from __future__ import annotations

import json
import shutil
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from loadtest.harness.blobs import file_sha256
from loadtest.harness.children import BenchError, Proc, Processes
from loadtest.harness.procfs import cpu_seconds
from loadtest.harness.rows import KIB, MIB, Row, size_text
from loadtest.torrent.clients import ChildRun, Clients, Seeder, edge_settings, start_seeder
from loadtest.torrent.rows import Samples, rows_of, timeline_cells


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
    """What both parts share: the run's processes, ledger, and where results go."""

    cfg: Config
    procs: Processes
    ledger: Proc
    notes: list[str]
    checks: dict[str, Any]
    settings: dict[str, Any] = field(init=False)
    timelines: list[tuple[str, ...]] = field(default_factory=list)
    """The timeline table's cells, each part's rows in turn."""

    def __post_init__(self) -> None:
        self.settings = edge_settings(self.procs.workdir)

    def settings_note(self) -> str:
        keys = ("enable_dht", "enable_lsd", "enable_upnp", "enable_natpmp", "listen_interfaces")
        shown = ", ".join(f"{k}={json.dumps(self.settings[k])}" for k in keys)
        return (
            f"libtorrent settings: the plain client gets the edge's TorrentSession pack "
            f"({len(self.settings)} settings: {shown}, ...); the seeder runs with DHT, LSD, "
            "UPnP and NAT-PMP off on 127.0.0.1; peers found only through the magnet's x.pe"
        )


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # whatever the env says


def fetches(edge: Proc, cache: str) -> int:
    """The edge's ``atlas_edge_fetches_total`` of ``cache`` (MISS or HIT)."""
    metric = f'atlas_edge_fetches_total{{cache="{cache}"}} '
    with _DIRECT.open(f"{edge.url}/metrics", timeout=10) as response:
        found = [s for s in response.read().decode().splitlines() if s.startswith(metric)]
    return int(float(found[0].rsplit(" ", 1)[1])) if found else 0


def measure(bench: TorrentBench, part: str, seeder: Seeder, reps: int, cached: bool) -> Samples:
    started = time.perf_counter()
    sha = file_sha256(seeder.path)
    clients = Clients(bench.procs.workdir, seeder, bench.settings, sha)
    samples = Samples()
    # Untimed. A fresh seeder answers its first peer late (about 1 s for the first piece
    # when rate-limited), and checks each piece's hash the first time it sends it (seed
    # mode): unthrottled, a whole download absorbs both; limited, the first piece.
    clients.plain(warm_up=part == "limited")
    bench.notes.append(
        f"{part}: seeder start (writes and hashes the file), SHA-256 and warm-up: "
        f"{time.perf_counter() - started:.1f} s"
    )

    def plain() -> None:
        seeder_before = cpu_seconds(seeder.proc.pid)
        samples.runs["plain"].append(clients.plain())
        samples.seeder_cpu["plain"].append(cpu_seconds(seeder.proc.pid) - seeder_before)

    def atlas(edge: Proc) -> None:
        for method in ("first", "cached") if cached else ("first",):
            cache = "MISS" if method == "first" else "HIT"
            counted = fetches(edge, cache)
            edge_before, seeder_before = cpu_seconds(edge.pid), cpu_seconds(seeder.proc.pid)
            run, summary = clients.atlas(edge)
            samples.edge_cpu[method].append(cpu_seconds(edge.pid) - edge_before)
            samples.seeder_cpu[method].append(cpu_seconds(seeder.proc.pid) - seeder_before)
            if fetches(edge, cache) != counted + 1:
                raise BenchError(f"{part}: the {method} atlas fetch was not a {cache} at the edge")
            samples.runs[method].append(run)
            samples.summaries.append({"method": method, "edge": edge.name, **summary})
        ids = {s["content_id"] for s in samples.summaries if s["edge"] == edge.name}
        if len(ids) != 1:
            raise BenchError(f"{part}: the cached fetch got other content than the first")

    for rep in range(reps):
        # A fresh free edge (--free-mib 4096): empty store, its own libtorrent session.
        edge = bench.procs.edge(f"edge-{part}-{rep}", bench.ledger.url, "--free-mib", "4096")
        try:
            steps: list[Callable[[], None]] = [plain, partial(atlas, edge)]
            for step in steps if rep % 2 == 0 else steps[::-1]:
                step()
        finally:
            bench.procs.stop(edge)
            shutil.rmtree(bench.procs.workdir / edge.name, ignore_errors=True)
    bench.checks[part] = {
        "reps": reps,
        "bytes": seeder.size,
        "runs": {m: [timeline(r) for r in runs] for m, runs in samples.runs.items() if runs},
        "summaries": samples.summaries,
    }
    return samples


def timeline(run: ChildRun) -> dict[str, float | None]:
    """The run's events in seconds from its spawn (the JSON's per-run record)."""
    out: dict[str, float | None] = {
        key: round(run.since_spawn(key), 4)
        for key, value in run.stamps.items()
        if isinstance(value, float) and key != "started"
    }
    out["exit"] = round(run.seconds, 4)
    if run.part_first_byte is not None:
        out["part_first_byte"] = round(run.part_first_byte - run.spawned, 4)
    out["cpu_s"] = round(run.cpu, 3)
    return out


def run_part(bench: TorrentBench, part: str) -> list[Row]:
    """One seeder (capped for ``limited``), its repetitions; its rows (and timeline cells)."""
    cfg = bench.cfg
    limit = cfg.limit if part == "limited" else 0
    name = f"seeder-{part}"
    seeder = start_seeder(bench.procs, name, cfg.size, cfg.piece_size, limit)
    try:
        reps = cfg.reps if part == "unlimited" else cfg.limited_reps
        samples = measure(bench, part, seeder, reps, cached=part == "unlimited")
    finally:
        bench.procs.stop(seeder.proc)
        shutil.rmtree(bench.procs.workdir / name, ignore_errors=True)
    pieces = -(-seeder.size // cfg.piece_size)
    plain = samples.runs["plain"]
    out_of_order = [int(r.stamps["out_of_order"]) for r in plain]
    bench.notes.append(
        f"{part}: {size_text(seeder.size)} single-file hybrid torrent, {pieces} pieces of "
        f"{cfg.piece_size // KIB} KiB"
        + (f", seeder upload limit {limit / MIB:g} MiB/s (per torrent)" if limit else "")
        + f"; plain client: pieces verified before the file's first one: {out_of_order}"
    )
    firsts = [r.part_first_byte - r.spawned for r in samples.runs["first"] if r.part_first_byte]
    plain_firsts = [r.since_spawn("first_piece") for r in plain]
    if firsts:
        bench.notes.append(
            f"{part}: first byte counted from the spawn (process start and imports included): "
            f"atlas fetch's first byte in OUT.part {statistics.median(firsts):.3f} s, plain "
            f"client's first piece {statistics.median(plain_firsts):.3f} s (ratio "
            f"{statistics.median(firsts) / statistics.median(plain_firsts):.2f})"
        )
    limited = f", seeder limited to {limit / MIB:g} MiB/s" if limit else ""
    bench.timelines += timeline_cells(part, seeder.size, samples)
    return rows_of(part, limited, seeder.size, samples.runs)
