"""Torrent benchmark: ``atlas fetch MAGNET --file PATH`` against a plain libtorrent client.

Real processes on 127.0.0.1, all children of this one: a ledger, a seeder
(``tests/torrent_seeder.py``, one 200 MiB single-file hybrid torrent, 256 KiB pieces),
a fresh free edge per repetition (``--free-mib 4096``: no wallet, the free allowance
pays) and the clients. DHT, LSD, UPnP and NAT-PMP are off everywhere; peers are found
only through the magnet's ``x.pe=127.0.0.1:PORT``. In each repetition, in rotating order:

1. **reference**: a plain libtorrent client in its own process (the edge's libtorrent
   settings, sequential download) downloads the file from the seeder.
2. **first fetch**: ``atlas fetch MAGNET --file PATH -o OUT --json --edge URL`` against the
   fresh edge, which downloads from the seeder while the client reads.
3. **cached**: the same command again; the edge serves it from its store (a cache HIT).

First byte: plain = ``add_torrent`` → the file's first piece verified; Atlas =
``AtlasClient.open`` → the first verified chunk (stamped inside the ``atlas fetch``
process, see ``torrentbench/timed_fetch.py``). Throughput = size / wall time of the
command (spawn → exit). Part ``unlimited`` runs the seeder as fast as it goes, part
``limited`` caps its upload (20 MiB/s; no cached fetch there). Medians of several
repetitions; ``ratio`` = median / reference median, both from the same run. Usage::

    .venv/bin/python loadtest/bench_torrent.py [--quick] [--reps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from loadtest.harness import cli, report
from loadtest.harness.children import Processes, workspace
from loadtest.harness.machine import (
    machine_lines,
    run_facts,
    tree_line,
    version_of,
)
from loadtest.harness.rows import GIB, MIB, Row, measurement_table, references, table
from loadtest.proxybench.cpu import own_cpu_seconds, system_busy_seconds
from loadtest.torrentbench.parts import (
    FULL,
    QUICK,
    TIMELINE_HEADER,
    Bench,
    Config,
    run_part,
    settings_note,
)

PARTS = ("unlimited", "limited")


def format_value(value: float, unit: str) -> str:
    return f"{value:,.1f}"


def render(
    facts: dict[str, Any],
    cfg: Config,
    rows: Sequence[Row],
    notes: Sequence[str],
    sections: dict[str, list[str]],
) -> str:
    head = [
        "Atlas torrent benchmark (loadtest/bench_torrent.py)",
        *machine_lines(facts),
        tree_line(facts["uncommitted"]),
        f"disk:     seeder, edge and output files on {facts['data_dir_filesystem']}",
        f"libs:     libtorrent {facts['libtorrent']}, aiohttp {facts['aiohttp']}",
        f"mode:     {cfg.mode}, {cfg.size // MIB} MiB, medians of {cfg.reps} (unlimited) and "
        f"{cfg.limited_reps} (limited) repetitions; edges free (--free-mib 4096); "
        "ratio = median / reference median",
    ]
    return report.render(head, measurement_table(rows, format_value), references(rows), notes,
                         sections)  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    cli.add_common(parser, reps_help="repetitions of each part")
    cli.add_only(parser, PARTS)
    parser.add_argument(
        "--limit-mib", type=float, help="the limited seeder's upload in MiB/s (default 20)"
    )
    return parser.parse_args(argv)


async def run_all(cfg: Config, workdir: Path, only: Sequence[str], outcome: report.Outcome) -> None:
    procs = Processes(workdir)
    timelines: list[tuple[str, ...]] = []
    try:
        started = time.perf_counter()
        try:
            ledger = await asyncio.to_thread(procs.ledger)
            bench = Bench(cfg, procs, ledger, outcome.notes, outcome.checks, outcome.sections)
        except Exception as exc:
            outcome.fail("setup", exc)
            return
        outcome.notes.append(f"setup: ledger {time.perf_counter() - started:.1f} s")
        outcome.notes.append(settings_note(bench))

        def part(name: str) -> Callable[[], Awaitable[list[Row]]]:
            async def go() -> list[Row]:
                rows, cells = await asyncio.to_thread(run_part, bench, name)
                timelines.extend(cells)
                return rows

            return go

        await report.run_parts({name: part(name) for name in PARTS}, only, outcome)
    finally:
        procs.close()
        outcome.warn_bad_exits(procs)
    if timelines:
        outcome.sections["timeline (medians, seconds from the spawn)"] = table(
            TIMELINE_HEADER, timelines, left=(0, 9)
        )
    outcome.sections["every repetition, in order (the reference's after the bar)"] = [
        f"{row.id}: {', '.join(f'{v:.1f}' for v in row.samples)} | "
        f"{', '.join(f'{v:.1f}' for v in row.reference_samples)} {row.unit}"
        for row in outcome.rows
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if cli.checked_reps(args.reps) is not None:
        cfg = replace(cfg, reps=args.reps, limited_reps=args.reps)
    if args.limit_mib is not None:
        if args.limit_mib <= 0:
            raise SystemExit("--limit-mib must be above 0")
        cfg = replace(cfg, limit=int(args.limit_mib * MIB))
    started = time.perf_counter()
    busy_before, own_before = system_busy_seconds(), own_cpu_seconds()
    outcome = report.Outcome()
    with workspace("atlas-bench-torrent-") as workdir:
        facts = {
            **run_facts(workdir),
            "libtorrent": version_of("libtorrent"),
            "aiohttp": version_of("aiohttp"),
        }
        asyncio.run(run_all(cfg, workdir, args.only or PARTS, outcome))
        used = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
        outcome.notes.append(f"disk: {used / GIB:.1f} GiB in the temporary directory at the end")
    elapsed = time.perf_counter() - started
    outside = (system_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    outcome.notes.append(
        f"load average at the end: {os.getloadavg()[0]:.2f}; processes outside this benchmark "
        f"used {max(outside, 0) / elapsed:.2f} cores on average during the run"
    )
    print(render(facts, cfg, outcome.rows, outcome.notes, outcome.sections))
    print(f"wall time: {elapsed:.1f} s")
    report.write_outcome(
        args.json, "torrent", machine=facts, config=asdict(cfg), wall_time_s=elapsed,
        outcome=outcome,
    )  # fmt: skip
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop children on SIGTERM
    raise SystemExit(main())
