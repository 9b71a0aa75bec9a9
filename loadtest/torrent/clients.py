"""The seeder and the two timed clients: children whose spawn and exit (a pidfd) are clocked
with ``time.monotonic()``, the clock they stamp their events with."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdn_edge.torrent.session import TorrentSession
from loadtest.harness.blobs import file_sha256
from loadtest.harness.children import BenchError, Proc, Processes, Spawned
from loadtest.harness.procfs import Poller

HERE = Path(__file__).resolve().parent
SEEDER = HERE.parents[1] / "tests" / "torrent_seeder.py"
PART_POLL = 0.002  # seconds between two looks at ``OUT.part`` (only until its first byte)
RUN_TIMEOUT = 300.0


def edge_settings(workdir: Path) -> dict[str, Any]:
    """The libtorrent settings pack of an edge started as the benchmark starts its edges
    (``--allow-private-origins``, torrent listener on 127.0.0.1:0, no discovery)."""
    session = TorrentSession(
        workdir / "settings-probe", listen_interfaces="127.0.0.1:0", allow_private_peers=True
    )
    return dict(session._settings)


@dataclass(frozen=True, slots=True)
class Seeder:
    proc: Proc
    magnet: str
    name: str
    path: Path  # the file the seeder wrote (and seeds)
    size: int


def start_seeder(
    procs: Processes, name: str, size: int, piece_size: int, rate_limit: int
) -> Seeder:
    """``tests/torrent_seeder.py``: one single-file hybrid torrent of ``size`` bytes."""
    directory = procs.workdir / name
    argv = [sys.executable, str(SEEDER), "--dir", str(directory)]
    argv += ["--make", f"single:hybrid:{size}", "--piece-size", str(piece_size)]
    if rate_limit:
        argv += ["--rate-limit", str(rate_limit)]
    proc = procs.start(name, argv)
    record = proc.ready["torrents"][0]
    if "x.pe=127.0.0.1:" not in record["magnet"]:
        raise BenchError(f"the seeder's magnet names no loopback peer: {record['magnet']}")
    (file,) = record["files"]
    return Seeder(proc, record["magnet"], record["name"], directory / file["path"], file["size"])


@dataclass(frozen=True, slots=True)
class ChildRun:
    spawned: float
    exited: float
    stamps: dict[str, Any]  # the child's own stamps
    part_first_byte: float | None  # when ``OUT.part`` first held a byte (``atlas fetch`` only)
    cpu: float  # CPU seconds of the child (``getrusage(RUSAGE_CHILDREN)``)
    stdout: str

    @property
    def seconds(self) -> float:
        return self.exited - self.spawned

    def since_spawn(self, stamp: str) -> float:
        return float(self.stamps[stamp]) - self.spawned


def run_child(
    argv: Sequence[str],
    env: dict[str, str],
    workdir: Path,
    name: str,
    *,
    part: Path | None = None,
    stamps_file: Path | None = None,
) -> ChildRun:
    """Run one client to completion, clocked (BenchError if it fails), watching when ``part``
    first holds a byte; its stamps come from ``stamps_file``, else its stdout's last line."""
    before, first_byte = resource.getrusage(resource.RUSAGE_CHILDREN), []

    def look() -> bool:
        with contextlib.suppress(OSError):
            if part is not None and part.stat().st_size > 0:
                first_byte.append(time.monotonic())
        return part is None or bool(first_byte)

    with Spawned(argv, env, workdir, name) as child, Poller(look, PART_POLL):
        exited = child.wait(RUN_TIMEOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if stamps_file is not None:
        stamps = json.loads(stamps_file.read_text(encoding="utf-8"))
        stamps_file.unlink()
    else:
        stamps = json.loads(child.stdout.strip().splitlines()[-1])
    first = first_byte[0] if first_byte else None
    return ChildRun(child.spawned, exited, stamps, first, cpu, child.stdout)


@dataclass
class Clients:
    """How to run the plain libtorrent client and ``atlas fetch`` against one seeder."""

    workdir: Path
    seeder: Seeder
    settings: dict[str, Any]
    sha256: str  # of the seeded file: every downloaded copy is checked against it
    home: Path = field(init=False)
    runs: int = 0

    def __post_init__(self) -> None:
        self.home = self.workdir / "atlas-home"  # no wallet: the edges' free allowance
        self.home.mkdir(exist_ok=True)

    def plain(self, *, warm_up: bool = False) -> ChildRun:
        """The reference: a fresh libtorrent session downloads the whole file (sequential);
        with ``warm_up``, only until its first piece."""
        self.runs += 1
        save = self.workdir / f"plain-{self.runs}"
        argv = [sys.executable, str(HERE / "plain_client.py"), "--magnet", self.seeder.magnet]
        argv += ["--save", str(save), "--settings", json.dumps(self.settings)]
        argv += ["--warm-up"] if warm_up else []
        try:
            run = run_child(argv, dict(os.environ), self.workdir, f"plain-{self.runs}")
            if warm_up:
                return run
            self.check(save / self.seeder.name, "the plain client")
        finally:
            shutil.rmtree(save, ignore_errors=True)
        if run.stamps.get("size") != self.seeder.size:
            raise BenchError(f"the plain client downloaded {run.stamps}")
        return run

    def atlas(self, edge: Proc) -> tuple[ChildRun, dict[str, Any]]:
        """``atlas fetch MAGNET --file PATH -o OUT --json --edge URL`` (timed); its summary."""
        self.runs += 1
        output = self.workdir / f"atlas-{self.runs}.bin"
        part = output.with_name(output.name + ".part")
        stamps = self.workdir / f"atlas-{self.runs}.stamps"
        argv = [sys.executable, str(HERE / "timed_fetch.py"), "fetch", self.seeder.magnet]
        argv += ["--file", self.seeder.name, "-o", str(output), "--json", "--edge", edge.url]
        env = {**os.environ, "ATLAS_HOME": str(self.home), "ATLAS_BENCH_STAMPS": str(stamps)}
        env.pop("ATLAS_PASSPHRASE", None)
        name = f"atlas-{self.runs}"
        try:
            run = run_child(argv, env, self.workdir, name, part=part, stamps_file=stamps)
            self.check(output, "atlas fetch")
        finally:
            for path in (output, part, output.with_name(output.name + ".atlas"), stamps):
                path.unlink(missing_ok=True)
        summary: dict[str, Any] = json.loads(run.stdout)
        if summary.get("status") != 200 or summary.get("bytes") != self.seeder.size:
            raise BenchError(f"atlas fetch: {summary}")
        if summary.get("dropped"):
            raise BenchError(f"atlas fetch dropped a provider: {summary['dropped']}")
        return run, summary

    def check(self, path: Path, who: str) -> None:
        if file_sha256(path) != self.sha256:
            raise BenchError(f"{who}: the downloaded file differs from the seeded one")
