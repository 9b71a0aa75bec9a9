"""The load client of the rps part: ``hey``, or an aiohttp fallback."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from loadtest.harness.children import BenchError
from loadtest.proxybench.bench import client_env
from loadtest.proxybench.cpu import child_cpu_seconds


@dataclass(frozen=True, slots=True)
class LoadRun:
    client: str
    responses: int
    seconds: float
    rps: float
    statuses: dict[int, int]
    errors: int
    body_bytes: int
    client_cpu: float


def run_hey(url: str, proxy: str, seconds: float, concurrency: int) -> LoadRun:
    """``hey -z S -c C -x http://PROXY URL`` (keep-alive, one connection per worker), parsed."""
    argv = [shutil.which("hey") or "hey", "-z", f"{seconds:g}s", "-c", str(concurrency)]
    argv += ["-t", "30", "-disable-compression", "-x", proxy, url]
    cpu = child_cpu_seconds()
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
        env=client_env(),
    )
    cpu = child_cpu_seconds() - cpu
    out = result.stdout
    if result.returncode != 0:
        raise BenchError(f"hey exited {result.returncode}: {result.stderr[-1500:]}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    if rps is None or total is None:
        raise BenchError(f"unexpected hey output: {out[-1500:]}")
    data = re.search(r"Total data:\s+(\d+) bytes", out)
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = 0
    if "Error distribution:" in out:
        tail = out.split("Error distribution:", 1)[1]
        errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", tail, re.MULTILINE))
    responses = sum(statuses.values())
    return LoadRun(
        "hey",
        responses,
        float(total[1]),
        float(rps[1]),
        statuses,
        errors,
        int(data[1]) if data else 0,
        cpu,
    )


async def run_aiohttp_load(url: str, proxy: str, seconds: float, concurrency: int) -> LoadRun:
    """The fallback client: ``concurrency`` workers, each GET after the previous answer."""
    statuses: Counter[int] = Counter()
    errors = body = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors, body
            while time.perf_counter() < deadline:
                try:
                    async with session.get(url, proxy=proxy) as response:
                        body += len(await response.read())
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    responses = sum(statuses.values())
    return LoadRun(
        "aiohttp",
        responses,
        elapsed,
        responses / elapsed,
        dict(statuses),
        errors,
        body,
        time.process_time() - cpu,
    )
