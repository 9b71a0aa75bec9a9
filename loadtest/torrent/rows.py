"""What the torrent benchmark's tables show: its rows against the plain client, the timeline."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from loadtest.harness.rows import MIB, Row, make_row, size_text
from loadtest.torrent.clients import ChildRun

METHODS = ("plain", "first", "cached")
TIMELINE_HEADER = (
    "run", "ready", "asked", "head", "first byte", ".part byte", "last byte", "exit",
    "in-process MiB/s", "CPU s client/edge/seeder"
)  # fmt: skip
NAMES = {"plain": "plain libtorrent", "first": "atlas fetch, first", "cached": "atlas, cached"}
ATLAS_KEYS = ("imported", "open", "opened", "first_chunk", "last_chunk")
KEYS = {"plain": ("imported", "asked", "metadata", "first_piece", "finished")}
"""The stamps of each column from ready to last byte (plain client, else ``atlas fetch``)."""


@dataclass
class Samples:
    runs: dict[str, list[ChildRun]] = field(default_factory=lambda: {m: [] for m in METHODS})
    edge_cpu: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    seeder_cpu: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    summaries: list[dict[str, Any]] = field(default_factory=list)


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
    return [size / (r.since_spawn("finished") if "finished" in r.stamps else r.seconds) / MIB
            for r in runs]  # fmt: skip


def rows_of(part: str, limited: str, size: int, runs: dict[str, list[ChildRun]]) -> list[Row]:
    """First byte and throughput of the first fetch (with goals) and, if run, of the cached
    one, each against the plain client; ``limited`` names the seeder's cap (or is empty)."""
    text, plain = size_text(size), runs["plain"]
    prefix = "torrent" if part == "unlimited" else "torrent_limited"
    ttfb_ref = (
        f"plain libtorrent client{limited}: add_torrent → first piece of the file verified "
        "(sequential download)"
    )
    rate_ref = f"plain libtorrent client{limited}: size / (spawn → torrent finished)"
    rows = []
    first = ", limited, first fetch" if limited else ", first fetch"
    for method, id_, what in (("first", "", first), ("cached", "_cached", ", cached (edge HIT)")):
        if not runs[method]:
            continue
        first_goal = ("ratio <= 1.20", lambda _m, ratio: ratio <= 1.2)
        rate_goal = ("ratio >= 0.80", lambda _m, ratio: ratio >= 0.8)
        rows += [
            make_row(
                f"{prefix}{id_}_first_byte",
                f"atlas fetch {text} magnet{what}: open() → first chunk",
                "ms",
                [first_byte_ms(r) for r in runs[method]],
                ttfb_ref,
                [first_byte_ms(r) for r in plain],
                *(first_goal if method == "first" else ("", None)),
            ),
            make_row(
                f"{prefix}{id_}_throughput",
                f"atlas fetch {text} magnet{what}: size / wall time",
                "MiB/s",
                rate(size, runs[method]),
                rate_ref,
                rate(size, plain),
                *(rate_goal if method == "first" else ("", None)),
            ),
        ]
    return rows


def timeline_cells(part: str, size: int, samples: Samples) -> list[tuple[str, ...]]:
    """Medians, in seconds from the spawn: imports done, content asked for, metadata or
    signed head, first byte in hand, first byte in OUT.part, last byte, process exit."""

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.3f}"

    cells: list[tuple[str, ...]] = []
    for method, runs in samples.runs.items():
        if not runs:
            continue
        keys = KEYS.get(method, ATLAS_KEYS)
        ready, asked, head, first, last = (med([r.since_spawn(k) for r in runs]) for k in keys)
        parts = [r.part_first_byte - r.spawned for r in runs if r.part_first_byte is not None]
        inner = statistics.median(
            size / (r.stamps[keys[4]] - r.stamps[keys[1]]) / MIB for r in runs
        )
        edge = med(samples.edge_cpu[method]) if samples.edge_cpu[method] else "-"
        cpu = f"{med([r.cpu for r in runs])}/{edge}/{med(samples.seeder_cpu[method])}"
        every = (ready, asked, head, first, med(parts) if parts else "-", last)
        cells.append((f"{part}: {NAMES[method]}", *every, med([r.seconds for r in runs]),
                      f"{inner:.1f}", cpu))  # fmt: skip
    return cells
