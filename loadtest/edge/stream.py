"""Part 2, stream: a large response through a fresh edge; its memory and throughput."""

from __future__ import annotations

import asyncio
import shutil
import time

import aiohttp

from loadtest.edge.bench import Env
from loadtest.harness.blobs import check_chunk
from loadtest.harness.children import BenchError
from loadtest.harness.network import edge_fetch, get_chunk, wait_sealed
from loadtest.harness.procfs import RSS_POLL, RssGrowth
from loadtest.harness.rows import CHUNK, GB, KIB, MIB, Row, make_row, size_text
from requester.protocol.manifest import chunk_size_for

STREAM_WORKERS = 2  # chunk requests in flight, as requester/downloader.py's per_provider
GROWTH_GOAL_MIB = 4
"""Issue 18: the edge's peak RSS growth no worse than 4 MiB (every repetition); it was 3.9
before the chunks were written in a worker thread, 4.5-5.9 while whole 1 MiB chunks queued
for it, 2.1-2.7 with the parts queued in a byte bound (cdn_edge/content/chunk_writer.py)."""


async def download_via_edge(
    session: aiohttp.ClientSession,
    edge: str,
    url: str,
    total: int,
    salt: int,
    cid: str | None = None,
) -> tuple[float, str]:
    """Seconds from POST /v1/fetch (skipped when ``cid`` is known) to the last chunk, with
    ``STREAM_WORKERS`` chunk requests in flight; and the content id."""
    started = time.perf_counter()
    if cid is None:
        cid = str((await edge_fetch(session, edge, url))["content_id"])
    chunk = chunk_size_for(total)  # what the edge cuts a body of this size in
    count = -(-total // chunk)
    next_index = 0

    async def worker(content_id: str) -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            status, body, _ = await get_chunk(session, edge, content_id, index)
            if status != 200:
                raise BenchError(f"chunk {index}: {status} {body[:300]!r}")
            # blobs are stamped every 256 KiB: a larger chunk starts with its first stamp
            check_chunk(body, index * chunk // CHUNK, salt, min(chunk, total - index * chunk))

    await asyncio.gather(*(worker(cid) for _ in range(STREAM_WORKERS)))
    elapsed = time.perf_counter() - started
    sealed = await wait_sealed(session, edge, cid)
    if sealed["chunks_available"] != count:
        raise BenchError(f"edge holds {sealed['chunks_available']} chunks, expected {count}")
    return elapsed, cid


async def download_direct(session: aiohttp.ClientSession, url: str, total: int, salt: int) -> float:
    """Seconds to read ``url`` from the origin, checked chunk by chunk like the edge download."""
    started = time.perf_counter()
    async with session.get(url) as response:
        if response.status != 200:
            raise BenchError(f"origin: {response.status}")
        for index in range(-(-total // CHUNK)):
            size = min(CHUNK, total - index * CHUNK)
            check_chunk(await response.content.readexactly(size), index, salt, size)
        if await response.content.read(1):
            raise BenchError("origin sent more than expected")
    return time.perf_counter() - started


async def stream_once(env: Env, rep: int, samples: dict[str, list[float]]) -> bool:
    """One repetition on a fresh edge (a clean peak RSS and an empty store); False if VmHWM
    could not be reset (the growth is then from VmRSS polling only)."""
    session, total, origin = env.session, env.run.cfg.stream_bytes, env.origin.url
    name, hwm_reset = f"stream-edge-{rep}", True
    # Free allowance for the warm-up, the streamed body and its second download.
    edge = env.run.procs.edge(name, env.ledger.url, "--free-mib", "4096")
    try:
        warm = 1000 + rep  # the first transfer loads code and buffers: not growth
        await download_via_edge(session, edge.url, f"{origin}/blob/{MIB}?salt={warm}", MIB, warm)
        await asyncio.sleep(0.3)
        salt, direct_salt = 2000 + rep, 3000 + rep

        async def through_edge() -> None:
            nonlocal hwm_reset
            url = f"{origin}/blob/{total}?salt={salt}"
            with RssGrowth(edge.pid) as growth:
                seconds, cid = await download_via_edge(session, edge.url, url, total, salt)
            hwm_reset = growth.hwm_reset
            samples["growth"].append(growth.growth_kib / KIB)
            samples["through"].append(total / seconds / GB)
            seconds, _ = await download_via_edge(session, edge.url, url, total, salt, cid)
            samples["stored"].append(total / seconds / GB)

        async def direct() -> None:
            url = f"{origin}/blob/{total}?salt={direct_salt}"
            samples["direct"].append(total / await download_direct(session, url, total,
                                                                   direct_salt) / GB)  # fmt: skip

        for step in [through_edge, direct] if rep % 2 == 0 else [direct, through_edge]:
            await step()
    finally:
        env.run.procs.stop(edge)
        shutil.rmtree(env.run.workdir / name, ignore_errors=True)
    return hwm_reset


async def bench_stream(env: Env) -> list[Row]:
    cfg, total = env.run.cfg, env.run.cfg.stream_bytes
    samples: dict[str, list[float]] = {k: [] for k in ("growth", "through", "stored", "direct")}
    hwm_reset = all([await stream_once(env, rep, samples) for rep in range(cfg.stream_reps)])
    size, growth = size_text(total), samples["growth"]
    env.run.notes.append(
        f"stream: {size} of random bytes, {STREAM_WORKERS} chunk requests in flight, a fresh "
        "free edge per rep; RSS growth = peak (VmHWM after a clear_refs reset, and VmRSS polled "
        f"every {RSS_POLL * 1000:.0f} ms) - VmRSS before; per rep MiB: "
        + ", ".join(f"{g:.1f}" for g in growth)
        + ("" if hwm_reset else " (VmRSS polling only: clear_refs refused)")
    )
    env.run.checks["stream"] = {"bytes": total}
    direct = "same client, direct from the origin (one GET)"
    return [
        make_row("stream_rss_growth", f"edge peak RSS growth, {size} streamed through", "MiB",
                 growth, f"body size ({size}); ratio = share of the body held in memory",
                 [total / MIB] * len(growth), f"<= {GROWTH_GOAL_MIB} MiB",
                 lambda _m, _r: max(growth) <= GROWTH_GOAL_MIB),
        make_row("stream_through", f"download {size} via edge, origin fetch included", "GB/s",
                 samples["through"], direct, samples["direct"]),
        make_row("stream_stored", f"download {size} again, from the edge's store", "GB/s",
                 samples["stored"], direct, samples["direct"]),
    ]  # fmt: skip
