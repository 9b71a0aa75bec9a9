"""Torrent benchmark: ``atlas fetch MAGNET --file PATH`` through a fresh free edge against a
plain libtorrent client, both fed by one local seeder; ``loadtest/README.md`` says what each
row measures and how the clocks work."""

from __future__ import annotations

import time
from functools import partial

from loadtest.harness.bench_main import Bench, Option, Run
from loadtest.harness.rows import MIB, table
from loadtest.torrent.measure import FULL, QUICK, Config, TorrentBench, run_part
from loadtest.torrent.rows import TIMELINE_HEADER

PARTS = ("unlimited", "limited")


async def measure(run: Run[Config]) -> None:
    """Both parts, one after the other in this thread (each waits on its child processes)."""
    started = time.perf_counter()
    bench = TorrentBench(run.cfg, run.procs, run.procs.ledger(), run.notes, run.checks)
    run.notes.insert(0, f"setup: ledger {time.perf_counter() - started:.1f} s")
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
