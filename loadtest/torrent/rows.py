"""What the torrent benchmark's tables show: its rows against the plain client, and the
timeline of each client (issue 18 hunts the first-piece stall in it)."""

from __future__ import annotations

import statistics

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
