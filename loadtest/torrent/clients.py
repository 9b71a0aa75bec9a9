"""The seeder and the two timed clients: children whose spawn and exit are clocked with
``time.monotonic()``, the clock they stamp their events with."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdn_edge.torrent.session import TorrentSession
from loadtest.harness.blobs import file_sha256
from loadtest.harness.children import BenchError, Proc, Processes, Timed, run_timed
from loadtest.harness.network import timed_download
from loadtest.harness.procfs import cpu_clock

HERE = Path(__file__).resolve().parent
SEEDER = HERE.parents[1] / "tests" / "torrent_seeder.py"


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
    """One client's run, its own stamps, and the CPU seconds of each process it kept busy."""

    run: Timed
    stamps: dict[str, Any]
    cpu: dict[str, float]  # client, seeder and (atlas fetch) edge

    def since_spawn(self, stamp: str) -> float:
        return float(self.stamps[stamp]) - self.run.spawned

    def timeline(self) -> dict[str, Any]:
        """Its events in seconds from the spawn (the JSON's per-run record)."""
        out: dict[str, Any] = {k: round(self.since_spawn(k), 4) for k, v in self.stamps.items()
                               if isinstance(v, float) and k != "started"}  # fmt: skip
        if self.run.first_byte is not None:
            out["part_first_byte"] = round(self.run.first_byte - self.run.spawned, 4)
        cpu = {k: round(v, 3) for k, v in self.cpu.items()}
        return {**out, "exit": round(self.run.seconds, 4), "cpu_s": cpu}


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
        argv = [sys.executable, str(HERE / "plain_client.py"), self.seeder.magnet, str(save)]
        argv += [json.dumps(self.settings), *(["--warm-up"] if warm_up else [])]
        used = cpu_clock({"seeder": self.seeder.proc.pid})
        try:
            run = run_timed(argv, dict(os.environ), self.workdir, f"plain-{self.runs}")
            done = ChildRun(run, run.summary, {"client": run.cpu, **used()})
            if not warm_up and file_sha256(save / self.seeder.name) != self.sha256:
                raise BenchError("the plain client's file differs from the seeded one")
        finally:
            shutil.rmtree(save, ignore_errors=True)
        if not warm_up and done.stamps.get("size") != self.seeder.size:
            raise BenchError(f"the plain client downloaded {done.stamps}")
        return done

    def atlas(self, edge: Proc) -> tuple[ChildRun, dict[str, Any]]:
        """``atlas fetch MAGNET --file PATH -o OUT --json --edge URL`` (timed); its summary.
        Its first byte is watched for in ``OUT.part``, independently of its own stamps."""
        self.runs += 1
        stamps = self.workdir / f"atlas-{self.runs}.stamps"
        argv = [sys.executable, str(HERE / "timed_fetch.py"), "fetch", self.seeder.magnet]
        argv += ["--file", self.seeder.name, "--json", "--edge", edge.url]
        env = {**os.environ, "ATLAS_HOME": str(self.home), "ATLAS_BENCH_STAMPS": str(stamps)}
        env.pop("ATLAS_PASSPHRASE", None)
        used = cpu_clock({"edge": edge.pid, "seeder": self.seeder.proc.pid})
        try:
            name = f"atlas-{self.runs}"
            run = timed_download(argv, env, self.workdir, name, self.sha256, watch=True)
            done = ChildRun(run, json.loads(stamps.read_text(encoding="utf-8")),
                            {"client": run.cpu, **used()})  # fmt: skip
        finally:
            stamps.unlink(missing_ok=True)
        summary = run.summary
        if summary.get("status") != 200 or summary.get("bytes") != self.seeder.size:
            raise BenchError(f"atlas fetch: {summary}")
        if summary.get("dropped"):
            raise BenchError(f"atlas fetch dropped a provider: {summary['dropped']}")
        return done, summary
