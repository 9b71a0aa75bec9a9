"""Throughput by payload size: the same curl, direct from nginx, through plain mitmdump and
through ``atlas proxy`` (cached at the edges), one payload size after another.

This is the curve ``docs/performance.md`` plots: small payloads show each path's fixed cost
per request (for Atlas a ``/v1/fetch``, provider look-ups, a paid and verified chunk), large
ones its streaming rate."""

from __future__ import annotations

import asyncio
import statistics

from loadtest.harness.blobs import write_blob
from loadtest.harness.children import BenchError
from loadtest.harness.rows import Row, make_row, size_text
from loadtest.proxybench.bench import Bench, atlas_headers_check, curl_via

PATHS = ("atlas", "mitmdump", "direct")
SALT = 100
"""Blob salts from here on: distinct from the other files', so no chunk is shared."""
MB = 1e6


def file_name(size: int) -> str:
    return f"size-{size}.bin"


async def bench_sizes(bench: Bench) -> list[Row]:
    cfg, net, loop = bench.cfg, bench.net, asyncio.get_running_loop()
    www = net.workdir / "nginx" / "www"
    for i, size in enumerate(cfg.sizes):
        name = file_name(size)
        net.files[name] = await loop.run_in_executor(None, write_blob, www / name, size, SALT + i)
    rates: dict[int, dict[str, list[float]]] = {s: {p: [] for p in PATHS} for s in cfg.sizes}
    content: dict[int, str] = {}

    def one(size: int, path: str) -> float:
        run = curl_via(bench, None if path == "direct" else path, file_name(size))
        if path == "atlas":
            atlas_headers_check(run.headers, content.get(size))
        return size / run.seconds / MB

    for size in cfg.sizes:
        # Warm-up, not timed: the origin edge's MISS, the replicas, both proxies' paths.
        first = await loop.run_in_executor(None, curl_via, bench, "atlas", file_name(size))
        content[size] = content_id_of(first.headers)
        for path in PATHS:
            await loop.run_in_executor(None, one, size, path)
        for rep in range(cfg.sizes_reps):
            shift = rep % len(PATHS)
            for path in [*PATHS[shift:], *PATHS[:shift]]:
                rates[size][path].append(await loop.run_in_executor(None, one, size, path))
    medians = {p: [statistics.median(rates[s][p]) for s in cfg.sizes] for p in PATHS}
    bench.checks["sizes"] = {
        "bytes": list(cfg.sizes),
        "unit": "MB/s",
        "median": medians,
        "samples": {p: [rates[s][p] for s in cfg.sizes] for p in PATHS},
    }
    bench.notes.append(
        f"sizes: curl -o FILE [-x PROXY], time = curl's time_total, {cfg.sizes_reps} timed "
        "runs per size and path after one untimed warm-up (Atlas: the first request is the "
        "origin edge's MISS, later ones HITs of the same content id); direct nginx MB/s by "
        "size: "
        + ", ".join(
            f"{size_text(s)} {m:,.1f}" for s, m in zip(cfg.sizes, medians["direct"], strict=True)
        )
    )
    return [
        make_row(
            f"size_{size}",
            f"{size_text(size)} download through atlas proxy (curl -x), cached",
            "MB/s",
            rates[size]["atlas"],
            "the same curl through plain mitmdump streaming, same file from nginx",
            rates[size]["mitmdump"],
        )
        for size in cfg.sizes
    ]


def content_id_of(headers: str) -> str:
    for line in headers.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "x-atlas-content-id":
            return value.strip()
    raise BenchError("a download through the proxy carried no X-Atlas-Content-Id")
