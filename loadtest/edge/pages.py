"""Part 3, pages: HTML/CSS/JS chunks with and without zstd on the wire."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from loadtest.edge.config import (
    PAGE_MAX_TOTAL,
    PAGE_MIN_SIZE,
    PAGE_SUFFIXES,
    PAGE_TYPES,
    ZSTD_LEVEL,
    Env,
)
from loadtest.harness.children import BenchError
from loadtest.harness.edge_api import edge_fetch, get_chunk, wait_sealed
from loadtest.harness.rows import CHUNK, KIB, MIB, Row, make_row


def collect_pages(dest: Path) -> dict[str, str]:
    """Copy the HTML/CSS/JS shipped in installed packages (and the stdlib's IDLE help page)
    into ``dest``, deduplicated; returns file name -> kind."""
    roots = [Path(sysconfig.get_paths()["purelib"])]
    candidates: list[Path] = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in PAGE_SUFFIXES and path.is_file():
                candidates.append(path)
    help_page = Path(sysconfig.get_paths()["stdlib"]) / "idlelib" / "help.html"
    if help_page.is_file():
        candidates.append(help_page)
    dest.mkdir(parents=True)
    seen: set[bytes] = set()
    kinds: dict[str, str] = {}
    total = 0
    for path in candidates:
        size = path.stat().st_size
        if size < PAGE_MIN_SIZE or total + size > PAGE_MAX_TOTAL:
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
        raw_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        zstd_bytes: dict[str, int] = dict.fromkeys(PAGE_TYPES, 0)
        chunks: list[bytes] = []
        for name in kinds:
            info = await edge_fetch(session, edge.url, f"{env.origin.url}/pages/{name}")
            sealed = await wait_sealed(session, edge.url, info["content_id"])
            contents.append((name, info["content_id"], sealed["chunks_available"]))
        # Bytes on the wire, and a check that both forms carry the file.
        decompressor = zstandard.ZstdDecompressor()
        for name, cid, count in contents:
            raw = bytearray()
            for index in range(count):
                s1, plain, h1 = await get(cid, index, "identity")
                s2, packed, h2 = await get(cid, index, "zstd")
                if s1 != 200 or s2 != 200 or "Content-Encoding" in h1:
                    raise BenchError(f"{name} chunk {index}: {s1} {s2}")
                unpacked = (
                    decompressor.decompress(packed, max_output_size=CHUNK)
                    if h2.get("Content-Encoding") == "zstd"
                    else packed
                )
                if unpacked != plain:
                    raise BenchError(f"{name} chunk {index}: zstd form differs from identity")
                raw += plain
                chunks.append(plain)
                raw_bytes[kinds[name]] += len(plain)
                zstd_bytes[kinds[name]] += len(packed)
            if bytes(raw) != (pages / name).read_bytes():
                raise BenchError(f"{name}: edge chunks differ from the file")

        async def fetch_all(encoding: str) -> float:
            started = time.perf_counter()
            for _, cid, count in contents:
                for index in range(count):
                    status, _, _ = await get(cid, index, encoding)
                    if status != 200:
                        raise BenchError(f"chunk {index}: {status}")
            return time.perf_counter() - started

        total_mib = sum(len(c) for c in chunks) / MIB
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)

        def over_chunks(work: Callable[[bytes], object]) -> float:
            started = time.perf_counter()
            for chunk in chunks:
                work(chunk)
            return time.perf_counter() - started

        def sha256(chunk: bytes) -> bytes:
            return hashlib.sha256(chunk).digest()

        await fetch_all("zstd")  # warm-up
        await fetch_all("identity")
        over_chunks(compressor.compress)
        over_chunks(sha256)
        times: dict[str, list[float]] = {"zstd": [], "identity": [], "compress": [], "hash": []}
        for rep in range(env.run.cfg.page_reps):
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("zstd", lambda: fetch_all("zstd")),
                ("identity", lambda: fetch_all("identity")),
                ("compress", lambda: asyncio.to_thread(over_chunks, compressor.compress)),
                ("hash", lambda: asyncio.to_thread(over_chunks, sha256)),
            ]
            shift = rep % len(steps)
            for key, step in [*steps[shift:], *steps[:shift]]:
                times[key].append(await step())
    finally:
        env.run.procs.stop(edge)

    def per_mib(seconds: list[float]) -> list[float]:
        return [s * 1000 / total_mib for s in seconds]

    counts = {kind: sum(1 for k in kinds.values() if k == kind) for kind in PAGE_TYPES}
    env.run.notes.append(
        f"pages: {len(kinds)} files from installed packages ("
        + ", ".join(f"{counts[k]} {k} {raw_bytes[k] / KIB:,.0f} KiB" for k in PAGE_TYPES)
        + f"), {len(chunks)} chunks; wire bytes = chunk response bodies (Content-Length); "
        f"zstd level {ZSTD_LEVEL} as cdn_edge/wire_encoding.py"
    )
    files = [(pages / name).read_bytes() for name in kinds]
    raw_total = sum(len(f) for f in files)
    whole_zstd = sum(len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(f)) for f in files)
    whole_gzip = sum(len(gzip.compress(f, 6)) for f in files)
    env.run.notes.append(
        f"pages: for comparison, whole files (not 256 KiB chunks): zstd level {ZSTD_LEVEL} "
        f"{whole_zstd / raw_total:.2f}x, gzip -6 {whole_gzip / raw_total:.2f}x of raw"
    )
    env.run.checks["pages"] = {
        "files": len(kinds),
        "chunks": len(chunks),
        "raw_bytes": raw_bytes,
        "zstd_bytes": zstd_bytes,
        "whole_file_zstd_ratio": whole_zstd / raw_total,
        "whole_file_gzip6_ratio": whole_gzip / raw_total,
    }
    rows: list[Row] = []
    for kind in [*PAGE_TYPES, "all"]:
        plain_size = sum(raw_bytes.values()) if kind == "all" else raw_bytes[kind]
        packed_size = sum(zstd_bytes.values()) if kind == "all" else zstd_bytes[kind]
        if not plain_size:
            continue
        rows.append(
            make_row(
                f"pages_wire_{kind}",
                f"page set wire bytes with zstd: {kind}",
                "KiB",
                [packed_size / KIB],
                "same chunks without Accept-Encoding: zstd",
                [plain_size / KIB],
                "ratio <= 0.30",
                lambda _m, ratio: ratio <= 0.30,
            )
        )
    rows += [
        make_row(
            "pages_zstd_cost",
            f"zstd level {ZSTD_LEVEL} compress, page chunks",
            "ms/MiB",
            per_mib(times["compress"]),
            "hashlib.sha256 of the same chunks",
            per_mib(times["hash"]),
        ),
        make_row(
            "pages_fetch_zstd",
            "client time for all page chunks, zstd",
            "ms/MiB",
            per_mib(times["zstd"]),
            "same chunks, identity",
            per_mib(times["identity"]),
        ),
    ]
    return rows
