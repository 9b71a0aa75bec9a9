"""wrk driven by serve.lua: every request carries the next line of its thread's header file."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.edge.config import SERVE_CHUNKS
from loadtest.harness.children import BenchError

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
    base: str, prefix: str, pattern: Path, header: str, cycle: bool, conns: int, seconds: int
) -> WrkResult:
    """``conns`` threads of one connection each for ``seconds`` against ``base``, requesting
    ``prefix`` + chunk index with ``header`` set to the next line of the thread's file."""
    argv = [shutil.which("wrk") or "wrk", "-t", str(conns), "-c", str(conns), "-d", f"{seconds}s"]
    argv += ["--timeout", "5s", "-s", str(WRK_LUA), base, "--", prefix, str(SERVE_CHUNKS)]
    argv += [str(pattern), header, "1" if cycle else "0"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"wrk did not finish: {' '.join(argv)}") from None
    text = out.decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return WrkResult(**json.loads(line))
    raise BenchError(f"wrk gave no result (exit {proc.returncode}): {text}{err.decode()}")


def write_files(pattern: Path, files: Sequence[Sequence[str]]) -> list[Path]:
    """One header file per wrk thread: ``%d`` in ``pattern`` is the thread's number from 1."""
    paths = [Path(str(pattern).replace("%d", str(n))) for n in range(1, len(files) + 1)]
    for path, lines in zip(paths, files, strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return paths
