"""Part 3, pages: HTML/CSS/JS chunks with and without zstd on the wire."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import sysconfig
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import zstandard

from cdn_edge.wire_encoding import LEVEL
from loadtest.edge.bench import PAGE_SUFFIXES, PAGE_TYPES, Env
from loadtest.harness.children import BenchError
from loadtest.harness.network import edge_fetch, get_chunk, wait_sealed
from loadtest.harness.rows import CHUNK, KIB, MIB, Row, make_row, rotated

MIN_SIZE, MAX_TOTAL = 1 * KIB, 16 * MIB
"""Files of at least 1 KiB, 16 MiB in all."""


def collect_pages(dest: Path) -> dict[str, str]:
    """Copy the HTML/CSS/JS shipped in installed packages (and the stdlib's IDLE help page)
    into ``dest``, deduplicated; returns file name -> kind."""
    paths = sysconfig.get_paths()
    candidates = sorted(Path(paths["purelib"]).rglob("*"))
    candidates.append(Path(paths["stdlib"]) / "idlelib" / "help.html")
    dest.mkdir(parents=True)
    seen: set[bytes] = set()
    kinds: dict[str, str] = {}
    total = 0
    for path in candidates:
        if path.suffix not in PAGE_SUFFIXES or not path.is_file():
            continue
        size = path.stat().st_size
        if size < MIN_SIZE or total + size > MAX_TOTAL:
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest in seen:
            continue
        seen.add(digest)
        name = f"{len(kinds):03d}-{path.name}"
        (dest / name).write_bytes(data)
        kinds[name] = PAGE_SUFFIXES[path.suffix]
        total += size
    if not kinds:
        raise BenchError("no HTML/CSS/JS files found in the installed packages")
    return kinds


async def bench_pages(env: Env, pages: Path, kinds: dict[str, str]) -> list[Row]:
    session = env.session
    edge = env.run.procs.edge("pages-edge", env.ledger.url, "--free-mib", "100000")
    try:

        async def get(cid: str, index: int, encoding: str) -> tuple[int, bytes, Any]:
            return await get_chunk(session, edge.url, cid, index, {"Accept-Encoding": encoding})

        contents: list[tuple[str, str, int]] = []  # name, content id, chunk count
        for name in kinds:
            info = await edge_fetch(session, edge.url, f"{env.origin.url}/pages/{name}")
            sealed = await wait_sealed(session, edge.url, info["content_id"])
            contents.append((name, info["content_id"], sealed["chunks_available"]))
        # Bytes on the wire, and a check that both forms carry the file.
        raw_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        zstd_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        chunks: list[bytes] = []
        decompressor = zstandard.ZstdDecompressor()
        for name, cid, count in contents:
            for index in range(count):
                s1, plain, h1 = await get(cid, index, "identity")
                s2, packed, h2 = await get(cid, index, "zstd")
                if s1 != 200 or s2 != 200 or "Content-Encoding" in h1:
                    raise BenchError(f"{name} chunk {index}: {s1} {s2}")
                zstd = h2.get("Content-Encoding") == "zstd"
                if (decompressor.decompress(packed, CHUNK) if zstd else packed) != plain:
                    raise BenchError(f"{name} chunk {index}: zstd form differs from identity")
                chunks.append(plain)
                raw_bytes[kinds[name]] += len(plain)
                zstd_bytes[kinds[name]] += len(packed)
            if b"".join(chunks[-count:]) != (pages / name).read_bytes():
                raise BenchError(f"{name}: edge chunks differ from the file")

        async def fetch_all(encoding: str) -> float:
            started = time.perf_counter()
            for _, cid, count in contents:
                for index in range(count):
                    status, _, _ = await get(cid, index, encoding)
                    if status != 200:
                        raise BenchError(f"chunk {index}: {status}")
            return time.perf_counter() - started

        def over_chunks(work: Callable[[bytes], object]) -> float:
            started = time.perf_counter()
            for chunk in chunks:
                work(chunk)
            return time.perf_counter() - started

        compress = zstandard.ZstdCompressor(level=LEVEL).compress
        steps: dict[str, Callable[[], Awaitable[float]]] = {
            "zstd": lambda: fetch_all("zstd"),
            "identity": lambda: fetch_all("identity"),
            "compress": lambda: asyncio.to_thread(over_chunks, compress),
            "hash": lambda: asyncio.to_thread(over_chunks, lambda c: hashlib.sha256(c).digest()),
        }
        for step in steps.values():  # warm-up
            await step()
        times: dict[str, list[float]] = {key: [] for key in steps}
        for _, key in rotated(env.run.cfg.page_reps, list(steps)):
            times[key].append(await steps[key]())
    finally:
        env.run.procs.stop(edge)

    def per_mib(seconds: list[float]) -> list[float]:
        return [s * 1000 / (sum(len(c) for c in chunks) / MIB) for s in seconds]

    counts = {kind: sum(1 for k in kinds.values() if k == kind) for kind in PAGE_TYPES}
    files = [(pages / name).read_bytes() for name in kinds]
    raw_total = sum(len(f) for f in files)
    whole_zstd = sum(len(compress(f)) for f in files)
    whole_gzip = sum(len(gzip.compress(f, 6)) for f in files)
    env.run.notes += [
        f"pages: {len(kinds)} files from installed packages ("
        + ", ".join(f"{counts[k]} {k} {raw_bytes[k] / KIB:,.0f} KiB" for k in PAGE_TYPES)
        + f"), {len(chunks)} chunks; wire bytes = chunk response bodies (Content-Length); "
        f"zstd level {LEVEL} as cdn_edge/wire_encoding.py",
        f"pages: for comparison, whole files (not 256 KiB chunks): zstd level {LEVEL} "
        f"{whole_zstd / raw_total:.2f}x, gzip -6 {whole_gzip / raw_total:.2f}x of raw",
    ]
    env.run.checks["pages"] = {"files": len(kinds)}
    raw_bytes["all"], zstd_bytes["all"] = sum(raw_bytes.values()), sum(zstd_bytes.values())
    return [
        *(make_row(f"pages_wire_{kind}", f"page set wire bytes with zstd: {kind}", "KiB",
                   [zstd_bytes[kind] / KIB], "same chunks without Accept-Encoding: zstd",
                   [raw_bytes[kind] / KIB], "ratio <= 0.30", lambda _m, ratio: ratio <= 0.30)
          for kind in [*PAGE_TYPES, "all"] if raw_bytes[kind]),
        make_row("pages_zstd_cost", f"zstd level {LEVEL} compress, page chunks", "ms/MiB",
                 per_mib(times["compress"]), "hashlib.sha256 of the same chunks",
                 per_mib(times["hash"])),
        make_row("pages_fetch_zstd", "client time for all page chunks, zstd", "ms/MiB",
                 per_mib(times["zstd"]), "same chunks, identity", per_mib(times["identity"])),
    ]  # fmt: skip
