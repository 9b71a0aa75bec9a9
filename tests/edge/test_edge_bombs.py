"""Compression bombs through a real edge: refused early, for little CPU, leaving no trace.

Each bomb is 5 GiB of zeros under one or two content codings, made by the test
origin as it streams. The edge must refuse each with ``502 origin_too_large`` once
the decoded body passes its ratio to the bytes read (``cdn_edge.content.decoding``),
spending a fraction of a CPU second, not the 15 s a 4 GiB decode cost; and after a
round of refusals its memory must be back near where it was.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp

from tests.edge.edge_client import download
from tests.origin_server import text
from tests.processes import Running, start_edge

BOMBS = ("gzip", "deflate", "br", "zstd", "gzip,gzip", "br,zstd")
MIB = 1 << 20


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    """Resident memory of the process in bytes (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def refusal(session: aiohttp.ClientSession, edge: str, url: str) -> dict[str, Any]:
    """The problem the edge records for ``url``: the head is signed when the headers
    arrive, so a bomb fails mid-body and its content's description carries the error."""
    async with session.post(f"{edge}/v1/fetch", json={"url": url}) as resp:
        info = await resp.json()
        assert resp.status == 200, info
    async with asyncio.timeout(60):
        while info["error"] is None:
            assert info["seal"] is None, f"{url} was sealed: the bomb was expanded"
            await asyncio.sleep(0.05)
            async with session.get(f"{edge}/v1/content/{info['content_id']}") as resp:
                info = await resp.json()
    assert info["chunks_available"] == 0, "a failed content keeps nothing it would not serve"
    error: dict[str, Any] = info["error"]
    return error


async def test_bombs_are_refused_cheaply_and_memory_returns_to_baseline(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--no-tunnel")
    pid = edge.proc.pid
    try:
        async with aiohttp.ClientSession() as session:
            _, body = await download(session, edge.url, f"{origin.url}/gzip/300000")
            assert body == text(300_000)  # a small, very compressible page still decodes
            baseline = rss(pid)
            for round_ in range(2):
                before = cpu_seconds(pid)
                for codings in BOMBS:
                    url = f"{origin.url}/bomb/{codings}?round={round_}"
                    error = await refusal(session, edge.url, url)
                    assert (error["status"], error["type"].rsplit("/", 1)[1]) == (
                        502, "origin_too_large"
                    ), error  # fmt: skip
                    assert "times the" in error["detail"], error  # the ratio, not the 4 GiB cap
                spent = cpu_seconds(pid) - before
                # Generous: about 0.1 s each here; one 4 GiB decode took 15 s of CPU.
                assert spent < 1.0 * len(BOMBS), f"{spent:.1f} CPU seconds for {len(BOMBS)} bombs"
            await asyncio.sleep(0.5)
            grown = rss(pid) - baseline
    finally:
        edge.stop()
    assert grown < 24 * MIB, f"RSS grew {grown / MIB:.1f} MiB over 12 refused bombs"
