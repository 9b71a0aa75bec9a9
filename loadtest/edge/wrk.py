"""wrk driven by serve.lua: every request carries the next line of its thread's header file."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.edge.bench import SERVE_CHUNKS
from loadtest.harness.children import BenchError, run_timed

WRK_LUA = Path(__file__).with_name("serve.lua")


@dataclass(frozen=True, slots=True)
class WrkResult:
    """serve.lua's summary of one wrk run (wrk counts only status >= 400 as status errors)."""

    requests: int
    duration_us: int
    status_errors: int
    socket_errors: int  # connect, read and write errors and timeouts
    sent: int  # requests the Lua script generated (some may be in flight when wrk stops)
    exhausted: int
    latency_p50_us: int
    latency_p99_us: int

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


async def run_wrk(
    base: str, prefix: str, pattern: Path, header: str, cycle: bool, conns: int, seconds: int,
    chunks: int = SERVE_CHUNKS, suffix: str = "",
) -> WrkResult:  # fmt: skip
    """``conns`` threads of one connection each for ``seconds`` against ``base``, requesting
    ``prefix`` + chunk index (0 .. ``chunks`` - 1, cycled) + ``suffix`` with ``header`` set
    to the next line of the thread's file."""
    argv = [shutil.which("wrk") or "wrk", "-t", str(conns), "-c", str(conns), "-d", f"{seconds}s"]
    argv += ["--timeout", "5s", "-s", str(WRK_LUA), base, "--", prefix, str(chunks)]
    argv += [str(pattern), header, "1" if cycle else "0", suffix]
    run = await asyncio.to_thread(run_timed, argv, dict(os.environ), pattern.parent, "wrk")
    found = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not found:
        raise BenchError(f"wrk gave no result: {run.stdout}")
    return WrkResult(**json.loads(found[-1]))


def write_files(pattern: Path, files: Sequence[Sequence[str]]) -> list[Path]:
    """One header file per wrk thread: ``%d`` in ``pattern`` is the thread's number from 1."""
    paths = [Path(str(pattern).replace("%d", str(n))) for n in range(1, len(files) + 1)]
    for path, lines in zip(paths, files, strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return paths
